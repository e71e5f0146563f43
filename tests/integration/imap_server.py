"""A real IMAP server (Dovecot, Debian's dovecot-imapd) on loopback, in a temporary directory."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

CONFIG = """
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:{root}/mail/%u
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
mail_uid = dovecot
mail_gid = dovecot
first_valid_uid = 1
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
"""


@dataclass
class ImapServer:
    port: int
    user: str
    password: str
    config: Path


def start_dovecot(root: Path, port: int) -> ImapServer:
    if shutil.which("dovecot") is None:
        pytest.fail(
            "dovecot is not installed: .ci/run installs dovecot-imapd (apt-get install dovecot-imapd)"
        )
    for name in ("run", "state", "mail"):
        (root / name).mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    (root / "users").write_text("support:{PLAIN}mailbox-password\n")
    config = root / "dovecot.conf"
    config.write_text(CONFIG.format(root=root, port=port))
    shutil.chown(root / "mail", "dovecot", "dovecot")
    subprocess.run(["dovecot", "-c", str(config)], check=True)
    deadline = time.monotonic() + 10
    import socket

    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    return ImapServer(port, "support", "mailbox-password", config)


def stop_dovecot(server: ImapServer) -> None:
    subprocess.run(["doveadm", "-c", str(server.config), "stop"], check=False, capture_output=True)
