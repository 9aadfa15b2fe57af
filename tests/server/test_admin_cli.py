"""``rxvault server …`` and ``rxvault serve``: init, migrate, pharmacies, tokens, accounts,
audit verify, and the refusal to start without a pepper."""

from __future__ import annotations

import base64
import os
import stat

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from rxvault.cli import main
from rxvault.server import Settings, SettingsError, create_app, load_settings


def _run(args: list[str], env: dict[str, str] | None = None):
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def cli_env(clean_engine, database_url) -> dict[str, str]:
    return {
        "RXVAULT_DATABASE_URL": database_url,
        "RXVAULT_PEPPER": base64.b64encode(os.urandom(32)).decode(),
        "RXVAULT_CONFIG": "",
    }


def test_init_creates_config_pepper_and_database(tmp_path) -> None:
    code, out = _run(["server", "init", "--dir", str(tmp_path)], env={"RXVAULT_CONFIG": ""})
    assert code == 0, out
    pepper = tmp_path / "pepper.key"
    assert stat.S_IMODE(pepper.stat().st_mode) == 0o600
    assert len(base64.b64decode(pepper.read_text())) == 32
    settings = load_settings(tmp_path / "rxvault-server.toml", environ={})
    assert settings.pepper == base64.b64decode(pepper.read_text())
    assert (tmp_path / "rxvault.db").is_file()
    config = str(tmp_path / "rxvault-server.toml")
    code, out = _run(
        [
            "server",
            "pharmacies",
            "create",
            "corner-shop",
            "--name",
            "Corner Shop",
            "--config",
            config,
        ],
        env={"RXVAULT_CONFIG": ""},
    )
    assert code == 0, out
    assert "rxvat_" in out
    # A second init refuses to overwrite the pepper.
    code, out = _run(["server", "init", "--dir", str(tmp_path)], env={"RXVAULT_CONFIG": ""})
    assert code == 2
    assert "rxvault: error:" in out
    assert "already exists" in out


def test_pepper_file_readable_by_others_is_refused(tmp_path) -> None:
    pepper = tmp_path / "pepper.key"
    pepper.write_text(base64.b64encode(os.urandom(32)).decode())
    pepper.chmod(0o644)
    config = tmp_path / "s.toml"
    config.write_text('[server]\npepper_file = "pepper.key"\n')
    with pytest.raises(SettingsError, match="readable by other users"):
        load_settings(config, environ={})


def test_settings_errors_name_the_field(tmp_path) -> None:
    config = tmp_path / "s.toml"
    config.write_text('[server]\nhsts_max_age = "long"\n')
    with pytest.raises(SettingsError, match=r"s.toml: \[server\] hsts_max_age"):
        load_settings(config, environ={})
    config.write_text("[server]\nunknown_thing = 1\n")
    with pytest.raises(SettingsError, match="unknown setting"):
        load_settings(config, environ={})
    with pytest.raises(SettingsError, match="RXVAULT_PEPPER"):
        load_settings(None, environ={"RXVAULT_PEPPER": "c2hvcnQ="})


def test_server_refuses_to_start_without_pepper(database_url, clean_engine) -> None:
    with pytest.raises(SettingsError, match="no pepper"):
        create_app(Settings(database_url=database_url))
    demo = create_app(Settings(database_url=database_url, demo=True))
    demo.app.state.engine.dispose()  # type: ignore[attr-defined]
    code, out = _run(
        ["serve"],
        env={
            "RXVAULT_DATABASE_URL": database_url,
            "RXVAULT_CONFIG": "",
            "RXVAULT_PEPPER": "",
            "RXVAULT_DEMO": "",
        },
    )
    assert code == 2
    assert "rxvault: error: no pepper configured" in out
    assert "rxvault: hint:" in out


def test_admin_commands(cli_env, server) -> None:
    code, out = _run(["server", "migrate"], env=cli_env)
    assert code == 0, out
    code, out = _run(
        ["server", "pharmacies", "create", "north", "--name", "North Pharmacy"], env=cli_env
    )
    assert code == 0, out
    token = out.strip().splitlines()[-1]
    assert token.startswith("rxvat_")
    code, out = _run(["server", "pharmacies", "list"], env=cli_env)
    assert "north\tNorth Pharmacy" in out
    code, out = _run(
        ["server", "tokens", "create", "north", "--scopes", "directory,bogus"], env=cli_env
    )
    assert code == 2
    assert "unknown scope 'bogus'" in out
    code, out = _run(["server", "tokens", "list", "north"], env=cli_env)
    assert code == 0
    assert token not in out  # tokens are never shown again
    token_id = out.split("\t")[0]
    code, out = _run(["server", "tokens", "rotate", "north", token_id], env=cli_env)
    assert code == 0, out
    code, out = _run(["server", "tokens", "revoke", "north", "999"], env=cli_env)
    assert code == 2
    assert "has no token 999" in out
    code, out = _run(["server", "accounts", "unlock", "nobody"], env=cli_env)
    assert code == 2
    assert "no account named 'nobody'" in out
    code, out = _run(["server", "pharmacies", "disable", "north"], env=cli_env)
    assert code == 0, out
    code, out = _run(["server", "pharmacies", "list"], env=cli_env)
    assert "\tdisabled\t" in out
    code, out = _run(["server", "pharmacies", "disable", "north", "--enable"], env=cli_env)
    assert code == 0, out
    code, out = _run(["server", "audit", "verify"], env=cli_env)
    assert code == 0, out
    assert "audit log OK" in out
    engine = sa.create_engine(cli_env["RXVAULT_DATABASE_URL"], poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 1"))
    engine.dispose()
    code, out = _run(["server", "audit", "verify"], env=cli_env)
    assert code == 2
    assert "entry 1 was altered" in out


def test_admin_commands_refuse_an_unmigrated_database(tmp_path) -> None:
    env = {
        "RXVAULT_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
        "RXVAULT_CONFIG": "",
        "RXVAULT_PEPPER": base64.b64encode(os.urandom(32)).decode(),
    }
    code, out = _run(["server", "pharmacies", "list"], env=env)
    assert code == 2
    assert "rxvault server migrate" in out
