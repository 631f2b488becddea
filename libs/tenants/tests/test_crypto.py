from __future__ import annotations

from pathlib import Path

import pytest
from switchboard_runtime.config import ConfigError
from switchboard_tenants import TokenCipher, TokenDecryptError, generate_key


def test_round_trip_and_ciphertext_hides_plaintext() -> None:
    cipher = TokenCipher([generate_key()])
    token = cipher.encrypt("my-twilio-token")
    assert "my-twilio-token" not in token
    assert cipher.decrypt(token) == "my-twilio-token"


def test_rotation_keeps_old_tokens_readable_until_rotated() -> None:
    old, new = generate_key(), generate_key()
    stored = TokenCipher([old]).encrypt("secret")
    both = TokenCipher([new, old])
    assert both.decrypt(stored) == "secret"  # the old key still decrypts
    rotated = both.rotate(stored)
    assert TokenCipher([new]).decrypt(rotated) == "secret"  # only the new key is needed
    with pytest.raises(TokenDecryptError):
        TokenCipher([new]).decrypt(stored)


def test_keys_from_env_first_is_primary() -> None:
    old, new = generate_key(), generate_key()
    cipher = TokenCipher.from_env({"SB_TENANT_KEYS": f"{new}, {old}"})
    assert TokenCipher([new]).decrypt(cipher.encrypt("x")) == "x"


def test_keys_from_file(tmp_path: Path) -> None:
    key = generate_key()
    path = tmp_path / "keys"
    path.write_text(f"# primary first\n{key}\n\n")
    cipher = TokenCipher.from_env({"SB_TENANT_KEYS_FILE": str(path)})
    assert TokenCipher([key]).decrypt(cipher.encrypt("x")) == "x"


def test_missing_keys_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="SB_TENANT_KEYS"):
        TokenCipher.from_env({})


def test_bad_key_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        TokenCipher.from_env({"SB_TENANT_KEYS": "not-a-key-123"})
    assert "not-a-key-123" not in str(caught.value)
    assert "SB_TENANT_KEYS" in str(caught.value)
