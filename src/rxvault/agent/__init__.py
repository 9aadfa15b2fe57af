"""The pharmacy agent: mapping, documents, diff, keys, seal, upload, enrollment, scheduling.

The library is the product; ``rxvault agent …`` (:mod:`rxvault.agent.cli`) is a thin layer.

- :func:`load_mapping` / :class:`Mapping`: the TOML mapping (errors name the line).
- :func:`read_source`: a consistent, strict read of the mapped tables.
- :func:`prepare` → :class:`Documents`: digests of every patient, documents on demand.
- :class:`AgentContext` + :func:`run_sync`: the daily run; :func:`enroll`: enrollment codes.
"""

from __future__ import annotations

from rxvault.agent._context import AgentContext
from rxvault.agent._documents import DOCUMENT_FORMAT, Documents, prepare
from rxvault.agent._enroll import Enrollment, enroll
from rxvault.agent._mapping import Mapping, MappingError, load_mapping, parse_mapping
from rxvault.agent._report import Reporter, Summary
from rxvault.agent._setup import init_home
from rxvault.agent._source import SourceError, SourceRead, read_source
from rxvault.agent._sync import GuardRefused, SyncOptions, run_sync

__all__ = [
    "DOCUMENT_FORMAT",
    "AgentContext",
    "Documents",
    "Enrollment",
    "GuardRefused",
    "Mapping",
    "MappingError",
    "Reporter",
    "SourceError",
    "SourceRead",
    "Summary",
    "SyncOptions",
    "enroll",
    "init_home",
    "load_mapping",
    "parse_mapping",
    "prepare",
    "read_source",
    "run_sync",
]
