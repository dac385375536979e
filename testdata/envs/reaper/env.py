"""Fixture: leaves orphaned processes behind, to check that a replica's PID 1 reaps them."""

import os


class Actor:
    def orphan(self, n: int = 3) -> int:
        """Make n processes whose parent exits first: they are reparented to PID 1 and must be reaped there."""
        for _ in range(n):
            pid = os.fork()
            if pid == 0:
                if os.fork() == 0:
                    os._exit(0)  # the grandchild: exits at once
                os._exit(0)  # the child: exits, orphaning the grandchild
            os.waitpid(pid, 0)
        return n

    def zombies(self) -> int:
        """Count the zombie processes this replica can see."""
        count = 0
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if stat[stat.rindex(")") + 2 :].startswith("Z"):
                count += 1
        return count

    def pid(self) -> int:
        return os.getpid()
