"""The server's only door to :mod:`rxvault.format` (all cryptography lives there).

The server verifies signatures and computes peppered verifiers and key shares; it never opens a
block or a key bundle.
"""

from __future__ import annotations

from rxvault.format import (
    DEFAULT_KDF,
    Batch,
    FormatError,
    KdfParams,
    Leaf,
    MerkleTree,
    Statement,
    WeakKdfParameters,
    auth_verifier,
    check_auth,
    check_kdf_params,
    decoy_salt,
    merkle_tree,
    merkle_tree_packed,
    new_salt,
    pack_leaves,
    pharmacy_id,
    server_key_share,
    verify_batch,
    verify_statement,
)

__all__ = [
    "DEFAULT_KDF",
    "Batch",
    "FormatError",
    "KdfParams",
    "Leaf",
    "MerkleTree",
    "Statement",
    "WeakKdfParameters",
    "auth_verifier",
    "check_auth",
    "check_kdf_params",
    "decoy_salt",
    "merkle_tree",
    "merkle_tree_packed",
    "new_salt",
    "pack_leaves",
    "pharmacy_id",
    "server_key_share",
    "verify_batch",
    "verify_statement",
]
