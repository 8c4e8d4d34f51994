"""The crash suite's clients: the docker CLI (a subprocess per operation) and docker-py, with
one interface, each failure an OpError."""

import re
import subprocess

import wharfd_harness as H

BUSYBOX = "busybox:latest"


# A long-running container that a stop ends at once (a bare `sleep` as PID 1 ignores SIGTERM,
# so every stop would wait out its timeout and the kill would mostly cut stops).
SERVICE = ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]


class OpError(Exception):
    pass


class CliClient:
    """The docker CLI, one subprocess per operation."""

    kind = "cli"

    def __init__(self, daemon):
        self.d = daemon

    def _run(self, *args, timeout=60):
        try:
            r = H.run_docker(self.d, *args, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise OpError(f"docker {' '.join(args)}: timed out after {timeout}s") from e
        if r.returncode != 0:
            raise OpError(f"docker {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
        return r.stdout

    def create(self, name):
        return self._run("create", "--name", name, BUSYBOX, *SERVICE).strip()

    def create_vol(self, name, vol):
        # A new named volume over the image's /bin: the create copies /bin into it (copy-up).
        return self._run("create", "--name", name, "-v", f"{vol}:/bin", BUSYBOX, *SERVICE).strip()

    def run_d(self, name):
        return self._run("run", "-d", "--name", name, BUSYBOX, *SERVICE).strip()

    def run_rm(self, name, token):
        return self._run("run", "--rm", "--name", name, BUSYBOX, "echo", token)

    def start(self, cid):
        self._run("start", cid)

    def stop(self, cid):
        self._run("stop", "-t", "1", cid)

    def restart(self, cid):
        self._run("restart", "-t", "1", cid)

    def rm_f(self, cid):
        self._run("rm", "-f", cid)

    def rename(self, cid, new):
        self._run("rename", cid, new)

    def pause(self, cid):
        self._run("pause", cid)

    def unpause(self, cid):
        self._run("unpause", cid)

    def exec(self, cid, token):
        return self._run("exec", cid, "echo", token)

    def import_(self, tar, ref):
        return self._run("import", str(tar), ref, timeout=120).strip()

    def tag(self, src, ref):
        self._run("tag", src, ref)

    def rmi(self, ref, force):
        self._run("rmi", *(["-f"] if force else []), ref)

    def commit(self, cid, ref):
        return self._run("commit", cid, ref, timeout=120).strip()

    def pid(self, cid):
        return int(self._run("inspect", "-f", "{{.State.Pid}}", cid).strip())

    def volume_create(self, name):
        self._run("volume", "create", name)

    def volume_rm(self, name):
        self._run("volume", "rm", name)


class PyClient:
    """docker-py 7.1, one client per thread."""

    kind = "py"

    def __init__(self, daemon):
        import docker

        self.errors = (docker.errors.DockerException, OSError, ValueError)
        self.c = docker.DockerClient(base_url=daemon.host, timeout=60)
        self.api = self.c.api

    def _do(self, what, f, *a, **kw):
        try:
            return f(*a, **kw)
        except self.errors as e:
            raise OpError(f"{what}: {type(e).__name__}: {e}") from e

    def create(self, name):
        return self._do("create", self.api.create_container, BUSYBOX, SERVICE, name=name)["Id"]

    def create_vol(self, name, vol):
        hc = self.api.create_host_config(binds=[f"{vol}:/bin"])
        return self._do("create", self.api.create_container, BUSYBOX, SERVICE, name=name,
                        host_config=hc)["Id"]

    def run_d(self, name):
        return self._do("run -d", lambda: self.c.containers.run(BUSYBOX, SERVICE, name=name,
                                                                 detach=True).id)

    def run_rm(self, name, token):
        out = self._do("run --rm", self.c.containers.run, BUSYBOX, ["echo", token], name=name, remove=True)
        return out.decode(errors="replace")

    def start(self, cid):
        self._do("start", self.api.start, cid)

    def stop(self, cid):
        self._do("stop", self.api.stop, cid, timeout=1)

    def restart(self, cid):
        self._do("restart", self.api.restart, cid, timeout=1)

    def rm_f(self, cid):
        self._do("rm -f", self.api.remove_container, cid, force=True)

    def rename(self, cid, new):
        self._do("rename", self.api.rename, cid, new)

    def pause(self, cid):
        self._do("pause", self.api.pause, cid)

    def unpause(self, cid):
        self._do("unpause", self.api.unpause, cid)

    def exec(self, cid, token):
        def go():
            e = self.api.exec_create(cid, ["echo", token])
            out = self.api.exec_start(e["Id"])
            code = self.api.exec_inspect(e["Id"])["ExitCode"]
            if code != 0:
                raise OpError(f"exec exited {code}: {out!r}")
            return out.decode(errors="replace")
        return self._do("exec", go)

    def import_(self, tar, ref):
        repo, tag = ref.rsplit(":", 1)
        out = self._do("import", self.api.import_image_from_file, str(tar), repository=repo, tag=tag)
        ids = re.findall(r"sha256:[0-9a-f]{64}", out if isinstance(out, str) else str(out))
        if not ids:
            raise OpError(f"import: no image id in {out!r}")
        return ids[-1]

    def tag(self, src, ref):
        repo, tag = ref.rsplit(":", 1)
        if not self._do("tag", self.api.tag, src, repo, tag):
            raise OpError("tag: not acknowledged")

    def rmi(self, ref, force):
        self._do("rmi", self.api.remove_image, ref, force=force)

    def commit(self, cid, ref):
        repo, tag = ref.rsplit(":", 1)
        return self._do("commit", self.api.commit, cid, repository=repo, tag=tag)["Id"]

    def pid(self, cid):
        return int(self._do("inspect", self.api.inspect_container, cid)["State"]["Pid"])

    def volume_create(self, name):
        self._do("volume create", self.api.create_volume, name)

    def volume_rm(self, name):
        self._do("volume rm", self.api.remove_volume, name)

    def close(self):
        self.c.close()
