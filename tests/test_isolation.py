"""What a test session leaves alone: the user's HOME and Ray's default temp dir (conftest gives the
session its own)."""

import os
from pathlib import Path

from conftest import USER_HOME


def test_the_sessions_ray_keeps_out_of_the_users_home_and_temp_dir(ray_session):
    assert Path.home() != USER_HOME
    assert (Path(os.environ["RAY_TMPDIR"]) / "ray" / "session_latest").exists()  # not under /tmp/ray
    if os.environ.get("RAY_AUTH_MODE") == "token":
        # Ray turned token auth on for its new local cluster and saved the token under HOME: the session's
        token = (Path.home() / ".ray" / "auth_token").read_text()
        users = USER_HOME / ".ray" / "auth_token"
        assert not users.is_file() or users.read_text() != token
