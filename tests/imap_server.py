"""A real IMAP server for the bounce tests: Debian's Dovecot (package dovecot-imapd), run in
the foreground (`dovecot -F`) with a config file in a temporary folder, on free loopback
ports: one for implicit TLS (imaps) and one for plain IMAP with STARTTLS, a self-signed
certificate, one user with a plain password, maildirs under the same folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.smtp_sink import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "bounces", "s3cret pass"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_dh = </usr/share/dovecot/dh.pem
auth_mechanisms = plain login
first_valid_uid = 0
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


def available() -> bool:
    # Dovecot drops privileges to its own users: it runs here as root (CI, the dev box).
    return os.path.exists(DOVECOT) and os.geteuid() == 0 and \
        os.path.exists("/usr/share/dovecot/dh.pem")


class Dovecot:
    def __init__(self, cert: Path, key: Path):
        # Its own folder, readable by Dovecot's unprivileged users (pytest's are 0700).
        self.root = root = Path(tempfile.mkdtemp(prefix="dovecot-"))
        root.chmod(0o755)
        shutil.copy(cert, root / "cert.pem")
        shutil.copy(key, root / "key.pem")
        cert, key = root / "cert.pem", root / "key.pem"
        self.imap_port, self.imaps_port = free_port(), free_port()
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir(parents=True)
        shutil.chown(root / "mail", "nobody", "nogroup")
        (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        (root / "dovecot.conf").write_text(CONFIG.format(
            root=root, cert=cert, key=key, uid="nobody", gid="nogroup",
            imap_port=self.imap_port, imaps_port=self.imaps_port))
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.process.stderr.read().decode()}")
            try:
                socket.create_connection(("127.0.0.1", self.imaps_port), 0.2).close()
                socket.create_connection(("127.0.0.1", self.imap_port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("dovecot did not start listening within 15 s")

    def url(self, scheme: str = "imaps", folder: str = "INBOX",
            password: str = PASSWORD) -> str:
        port = self.imaps_port if scheme == "imaps" else self.imap_port
        quoted = password.replace(" ", "%20")
        return f"{scheme}://{USER}:{quoted}@localhost:{port}/{folder}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
