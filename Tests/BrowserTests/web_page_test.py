#!/usr/bin/env python3
"""The web page in a real browser: Debian's chromium, headless, driven by Playwright for Python.

A real `dynstereo serve` and `dynstereo work` on a real PostgreSQL (a database of this run's own on the
cluster `.ci/postgres` runs), the demo clip submitted through the page's form:

  open server   the page says it is open; an API error shows as the API words it; the upload's progress bar
                fills; a preview frame shows, marked provisional, while the job runs (the worker is paused
                with SIGSTOP once a window is stored, so the page is certain to see the job running); the job
                succeeds on the page; the browser can play H.264 and the depth video's duration is the
                job's, within one frame; a download link gives the API's bytes; the jobs list shows the job.
  keyed server  with a key created, the page asks for one and shows the API's refusal of a wrong one; with
                the right key a second job runs through the form; media and downloads use signed URLs that
                open without the header; a URL signed (as openapi.yaml documents) with an expiry in the past
                is refused as expired, the same one with a future expiry opens, a tampered one does not.

Prints one line per check and `browser: N passed, N failed`; exits 1 if any failed. Bounded: every wait has
a timeout, the whole run takes well under two minutes.

  DYNSTEREO_BINARY      the built executable (default .build/release/dynstereo)
  DYNSTEREO_DATABASE    a PostgreSQL URL for an administrative database (default the .ci/postgres cluster)
  CHROMIUM              the browser (default /usr/bin/chromium)
  DYNSTEREO_SCREENSHOTS a folder: screenshots of the three views are written there
"""

import hashlib
import hmac
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("DYNSTEREO_BINARY", str(ROOT / ".build/release/dynstereo"))
ADMIN_URL = os.environ.get("DYNSTEREO_DATABASE", "postgresql://postgres@127.0.0.1:55432/postgres")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SHOTS = os.environ.get("DYNSTEREO_SCREENSHOTS")
# Every wait of the browser, in milliseconds; a working page needs a fraction of it.
WAIT_MS = 45_000
# Playwright's wait_for_function would evaluate a string in the page, which its CSP forbids (no
# 'unsafe-eval'): waits are on selectors and URLs.
JOB_URL = re.compile(r"#/jobs/[0-9a-f-]{36}$")
# The demo clip: 5 frames; frames from tars become MP4s at 30 fps by default.
FRAMES, FPS = 5, 30.0

results = []


def check(name, condition, detail=""):
    results.append(bool(condition))
    print(f"{'ok  ' if condition else 'FAIL'}  {name}" + ("" if condition else f": {detail}"), flush=True)
    return bool(condition)


def psql(url, sql):
    return subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def database_url(name):
    """The administrative URL with its database replaced by `name`."""
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


class Process:
    """A child whose output (its log) is read line by line on a thread, so a test waits for the line it expects."""

    def __init__(self, arguments, log):
        self.log = open(log, "w")
        self.lines = []
        self.condition = threading.Condition()
        self.child = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.child.stdout:
            self.log.write(line)
            self.log.flush()
            with self.condition:
                self.lines.append(line)
                self.condition.notify_all()
        with self.condition:
            self.lines.append(None)
            self.condition.notify_all()

    def wait_for(self, pattern, timeout=60):
        """The first match of `pattern` in a line of output; raises if the child ends or the time passes."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self.condition:
            while True:
                for line in self.lines[seen:]:
                    if line is None:
                        raise RuntimeError(f"{self.child.args[1]} exited ({self.child.poll()}) before '{pattern}'")
                    match = re.search(pattern, line)
                    if match:
                        return match
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no '{pattern}' from {self.child.args[1]} within {timeout} s")
                self.condition.wait(left)

    def stop(self):
        if self.child.poll() is None:
            self.child.send_signal(signal.SIGCONT)
            self.child.terminate()
            try:
                self.child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
        self.log.close()


def free_port():
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Nginx:
    """deploy/nginx/dynstereo.conf as it ships, in a scratch prefix: its upstream pointed at this run's server,
    its TLS listener on a free loopback port with a self-signed certificate, the port-80 redirect left out."""

    def __init__(self, scratch, upstream_port):
        self.prefix = scratch / "nginx"
        (self.prefix / "logs").mkdir(parents=True)
        (self.prefix / "tls").mkdir()
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-keyout", str(self.prefix / "tls/privkey.pem"), "-out", str(self.prefix / "tls/fullchain.pem")],
                       check=True, capture_output=True)
        self.port = free_port()
        conf = (ROOT / "deploy/nginx/dynstereo.conf").read_text()
        conf = conf.replace("/etc/ssl/dynstereo/", f"{self.prefix}/tls/")
        conf = conf.replace("server 127.0.0.1:8080", f"server 127.0.0.1:{upstream_port}")
        conf = re.sub(r"server \{\s*listen 80;.*?\n\}\n", "", conf, count=1, flags=re.S)
        conf = conf.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{self.port} ssl http2;").replace("listen [::]:443 ssl http2;", "")
        assert f"127.0.0.1:{upstream_port}" in conf and f"127.0.0.1:{self.port} ssl" in conf and "listen 80;" not in conf
        (self.prefix / "dynstereo.conf").write_text(conf)
        user = "user nobody nogroup;" if os.getuid() == 0 else ""
        temp = "".join(f"    {kind}_temp_path {self.prefix}/{kind};\n" for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"])
        (self.prefix / "nginx.conf").write_text(
            f"{user}\nworker_processes 1;\npid {self.prefix}/nginx.pid;\nerror_log {self.prefix}/logs/error.log;\n"
            f"events {{ worker_connections 64; }}\nhttp {{\n    access_log {self.prefix}/logs/access.log;\n{temp}"
            f"    include {self.prefix}/dynstereo.conf;\n}}\n")
        # As a daemon, `nginx` returns once its master holds the listening socket: ready when this returns.
        subprocess.run(self.command(), check=True, capture_output=True)
        self.base = f"https://127.0.0.1:{self.port}"

    def command(self, *extra):
        return ["nginx", "-e", str(self.prefix / "logs/error.log"), "-p", f"{self.prefix}/", "-c", str(self.prefix / "nginx.conf"), *extra]

    def stop(self):
        subprocess.run(self.command("-s", "stop"), capture_output=True)


def http(method, url, key=None, body=None):
    request = urllib.request.Request(url, method=method, data=body)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def job_json(base, job_id, key=None):
    status, body = http("GET", f"{base}/jobs/{job_id}", key)
    assert status == 200, (status, body)
    return json.loads(body)


def shot(page, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def submit_through_form(page, clip, iters="2", kernel="2"):
    page.goto(page.url.split("#")[0] + "#/new")
    page.wait_for_selector("#view-new:not([hidden])", timeout=WAIT_MS)
    page.set_input_files("#left", str(clip / "left.tar"))
    page.set_input_files("#right", str(clip / "right.tar"))
    page.fill("#iters", iters)
    page.fill("#kernel_size", kernel)
    page.click("#submit-button")
    page.wait_for_url(JOB_URL, timeout=WAIT_MS)
    return page.evaluate("location.hash.split('/')[2]")


def check_video_and_downloads(page, base, job_id, key, label):
    job = job_json(base, job_id, key)
    listed = [url.rsplit("/", 1)[-1] for url in (job["urls"].get("results") or [])]
    can_play = page.evaluate("document.createElement('video').canPlayType('video/mp4; codecs=\"avc1.42E01E\"')")
    check(f"{label}: the browser can play H.264 ({can_play})", can_play in ("probably", "maybe"))
    if check(f"{label}: the job lists video.mp4", "video.mp4" in listed, listed):
        # The page writes the video's size and duration beside it once the browser has read its metadata.
        page.locator("#video-note", has_text=" s: ").wait_for(timeout=WAIT_MS)
        duration = page.evaluate("document.getElementById('job-video').duration")
        check(f"{label}: the video's duration {duration:.4f} s is the job's {FRAMES} frames at {FPS:g} fps, within one frame",
              abs(duration - FRAMES / FPS) <= 1 / FPS, duration)
        source = page.get_attribute("#job-video", "src")
        check(f"{label}: the video element's source is {'signed' if key else 'the plain route'}",
              ("signature=" in source) == bool(key), source)

    link = page.locator("#downloads a", has_text="disparity.npy")
    href = link.get_attribute("href")
    with page.expect_download(timeout=WAIT_MS) as download:
        link.click()
    downloaded = Path(download.value.path()).read_bytes()
    status, expected = http("GET", f"{base}/jobs/{job_id}/disparity.npy", key)
    check(f"{label}: the disparity.npy link gives the API's {len(expected)} bytes",
          status == 200 and hashlib.sha256(downloaded).digest() == hashlib.sha256(expected).digest(), (status, len(downloaded)))
    check(f"{label}: the link is {'signed' if key else 'the plain route'}", ("signature=" in href) == bool(key), href)

    # The shown frame's own files, once the job has succeeded: its disparity PNG and its colour frame, the
    # kinds the job's frames_ready templates name.
    frame_links = page.locator("#frame-downloads a")
    frame_links.first.wait_for(timeout=WAIT_MS)
    texts = frame_links.all_inner_texts()
    check(f"{label}: the frame's links name its disparity and colour files ({texts})",
          any(t.startswith("disparity/") for t in texts) and any(t.startswith("color/") for t in texts), texts)
    color = page.locator("#frame-downloads a", has_text="color/")
    if color.count():
        with page.expect_download(timeout=WAIT_MS) as download:
            color.first.click()
        downloaded = Path(download.value.path()).read_bytes()
        status, expected = http("GET", f"{base}/jobs/{job_id}/{color.first.inner_text()}", key)
        check(f"{label}: the frame's colour link gives the API's bytes", status == 200 and downloaded == expected,
              (status, len(downloaded), len(expected)))
    return href


def open_server(browser, base, clip, work_arguments, scratch):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    page = context.new_page()
    problems = []
    # Refused loads (CSP) and script errors; the 4xx answers the test provokes log "Failed to load resource".
    page.on("console", lambda message: ("Content Security Policy" in message.text or "Refused to" in message.text)
            and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(base + "/")
    page.wait_for_selector("#view-jobs:not([hidden])", timeout=WAIT_MS)
    check("open: the page says the server is open", "Open server" in page.inner_text("#access"), page.inner_text("#access"))

    # An API error, as the API words it: the form without its right side.
    page.goto(base + "/#/new")
    page.wait_for_selector("#view-new:not([hidden])", timeout=WAIT_MS)
    page.set_input_files("#left", str(clip / "left.tar"))
    page.click("#submit-button")
    page.wait_for_selector("#submit-error:not([hidden])", timeout=WAIT_MS)
    shown = page.inner_text("#submit-error")
    boundary = "web-page-test"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"left\"; filename=\"left.tar\"\r\n"
            f"Content-Type: application/x-tar\r\n\r\n").encode() + (clip / "left.tar").read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{base}/jobs", data=form, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        urllib.request.urlopen(request, timeout=30)
        words = None
    except urllib.error.HTTPError as error:
        words = json.loads(error.read())["error"]
    check("open: an API error shows as the API words it",
          words is not None and words["message"] in shown and words["code"] in shown, (shown, words))

    page.set_input_files("#right", str(clip / "right.tar"))
    page.fill("#iters", "2")
    page.fill("#kernel_size", "2")
    shot(page, "1-submit")
    page.click("#submit-button")
    page.wait_for_url(JOB_URL, timeout=WAIT_MS)
    job_id = page.evaluate("location.hash.split('/')[2]")
    check("open: the upload's progress bar filled", page.evaluate("document.getElementById('upload-progress').value") == 1)
    page.wait_for_selector("#job-status .status.queued", timeout=WAIT_MS)
    check("open: the job view shows the queued job", True)

    # The worker runs until the first window is stored, then stands still until the page has shown it.
    worker = Process(work_arguments, scratch / "work-open.log")
    try:
        worker.wait_for(r"window stored", timeout=90)
        worker.child.send_signal(signal.SIGSTOP)
        paused = job_json(base, job_id)
        check("open: the job runs, a frame stored, while the worker is paused",
              paused["status"] == "running" and paused["frames_ready"]["ranges"], (paused["status"], paused["frames_ready"]))
        # The page marks the image provisional in its load handler: it has loaded by then.
        page.wait_for_selector("#preview-image.provisional[data-scale=provisional]:not([hidden])", timeout=WAIT_MS)
        check("open: the provisional preview is a decoded image",
              page.evaluate("document.getElementById('preview-image').naturalWidth") > 0)
        check("open: a provisional preview frame showed before success",
              page.locator("#job-status .status.running").count() == 1 and "provisional" in page.inner_text("#preview-caption"))
        check("open: the windows table shows the worker",
              "browser-test" in page.inner_text("#windows-table"), page.inner_text("#windows-table"))
        shot(page, "2-job-running")
        worker.child.send_signal(signal.SIGCONT)
        page.wait_for_selector("#job-status .status.succeeded", timeout=WAIT_MS)
        check("open: the job succeeded on the page", True)
        page.wait_for_selector("#preview-image[data-scale=final]", state="attached", timeout=WAIT_MS)
        check_video_and_downloads(page, base, job_id, None, "open")
        shot(page, "3-job-succeeded")
    finally:
        worker.stop()

    page.goto(base + "/#/")
    page.wait_for_selector(f"#jobs-table tr[data-job='{job_id}'] .status.succeeded", timeout=WAIT_MS)
    row = page.inner_text(f"#jobs-table tr[data-job='{job_id}']")
    check("open: the jobs list shows the job with its frames and windows",
          job_id[:8] in row and f"{FRAMES} / {FRAMES}" in row, row)
    shot(page, "4-jobs")
    check("open: no script error and nothing refused by the Content-Security-Policy", not problems, problems)
    context.close()


def keyed_server(browser, base, clip, work_arguments, scratch, database):
    """The page through deploy/'s nginx (TLS, HTTP/2); the test's own requests go to the server directly."""
    key = subprocess.run([BINARY, "keys", "create", "--name", "web-test", "--database", database],
                         check=True, capture_output=True, text=True).stdout.strip()
    proxy = Nginx(scratch, int(base.rsplit(":", 1)[1]))
    try:
        keyed_through_proxy(browser, base, proxy.base, clip, work_arguments, scratch, database, key)
    finally:
        proxy.stop()
        for log in ["error.log"]:
            errors = (proxy.prefix / "logs" / log).read_text() if (proxy.prefix / "logs" / log).exists() else ""
            check("keyed: nginx logged no error", "[error]" not in errors and "[crit]" not in errors, errors[-500:])


def keyed_through_proxy(browser, base, page_base, clip, work_arguments, scratch, database, key):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True, ignore_https_errors=True)
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: ("Content Security Policy" in message.text or "Refused to" in message.text)
            and problems.append(message.text))
    page.goto(page_base + "/")
    check("keyed: the page is served through nginx over TLS", page.url.startswith("https://"), page.url)
    page.wait_for_selector("#key-panel:not([hidden])", timeout=WAIT_MS)
    check("keyed: without a key the page asks for one", "needs an API key" in page.inner_text("#access"))
    page.fill("#key-input", "dsk_wrong")
    page.click("#key-form button")
    page.wait_for_selector("#key-error:not([hidden])", timeout=WAIT_MS)
    check("keyed: a wrong key is refused in the API's words", "unknown API key" in page.inner_text("#key-error"),
          page.inner_text("#key-error"))
    shot(page, "5-key-asked")
    page.fill("#key-input", key)
    page.click("#key-form button")
    page.wait_for_selector("#view-jobs:not([hidden])", timeout=WAIT_MS)
    check("keyed: with the key the page works", page.evaluate("localStorage.getItem('dynstereo.apiKey')") == key)

    worker = Process(work_arguments, scratch / "work-keyed.log")
    try:
        job_id = submit_through_form(page, clip)
        page.wait_for_selector("#job-status .status.succeeded", timeout=WAIT_MS)
        check("keyed: the job succeeded on the page", True)
    finally:
        worker.stop()
    page.wait_for_selector("#preview-image[data-scale=final]", state="attached", timeout=WAIT_MS)
    check("keyed: the preview image is a signed URL", "signature=" in page.get_attribute("#preview-image", "src"))
    href = check_video_and_downloads(page, base, job_id, key, "keyed")

    # The signature as openapi.yaml documents it, under the database's secret: expired, then not.
    path = href.split("?")[0]
    key_id = re.search(r"[?&]key=([0-9a-f-]{36})", href).group(1)
    secret = bytes.fromhex(psql(database, "SELECT encode(secret, 'hex') FROM url_signing_secret"))

    def signed(expires):
        mac = hmac.new(secret, f"GET {path}\n{expires}\n{key_id}".encode(), hashlib.sha256).digest()
        return f"{base}{path}?expires={expires}&key={key_id}&signature={base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    now = int(time.time())
    status, body = http("GET", signed(now - 1))
    check("keyed: a signed URL past its expiry is refused as expired",
          status == 403 and json.loads(body)["error"]["code"] == "url_expired", (status, body[:200]))
    status, _ = http("GET", signed(now + 600))
    check("keyed: the same URL with a future expiry opens (the documented signature)", status == 200, status)
    status, _ = http("GET", base + href)
    check("keyed: the page's own signed URL opens without the header", status == 200, status)
    tampered = base + href.replace("disparity.npy", "result.tar")
    status, body = http("GET", tampered)
    check("keyed: the signature moved to another path opens nothing", status == 403, (status, body[:200]))
    check("keyed: no script error and nothing refused by the Content-Security-Policy", not problems, problems)
    context.close()


def main():
    scratch = Path(tempfile.mkdtemp(prefix="dynstereo-browser-"))
    name = f"web_page_test_{os.getpid()}"
    database = database_url(name)
    processes = []
    started = time.monotonic()
    try:
        psql(ADMIN_URL, f"CREATE DATABASE {name}")
        subprocess.run([BINARY, "demo", "--output", str(scratch)], check=True, capture_output=True)
        clip = scratch / "demo"
        (scratch / "uploads").mkdir()
        serve = Process([BINARY, "serve", "--database", database, "--listen", "127.0.0.1:0",
                         "--upload-dir", str(scratch / "uploads")], scratch / "serve.log")
        processes.append(serve)
        port = serve.wait_for(r"listening.*address=127\.0\.0\.1:(\d+)|address=127\.0\.0\.1:(\d+).*listening")
        base = f"http://127.0.0.1:{port.group(1) or port.group(2)}"
        work_arguments = [BINARY, "work", "--database", database, "--checkpoint", str(scratch / "demo_formula.pth"),
                          "--worker-id", "browser-test", "--lease-seconds", "120", "--poll-seconds", "1"]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                open_server(browser, base, clip, work_arguments, scratch)
                keyed_server(browser, base, clip, work_arguments, scratch, database)
            finally:
                browser.close()
    except Exception as error:  # a step that could not run is a failure with its reason
        check("the run completed", False, f"{type(error).__name__}: {error}")
        for log in sorted(scratch.glob("*.log")):
            print(f"--- {log.name} (last lines)\n" + "".join(log.read_text().splitlines(True)[-15:]), flush=True)
    finally:
        for process in processes:
            process.stop()
        subprocess.run(["psql", "-X", "-q", ADMIN_URL, "-c", f"DROP DATABASE IF EXISTS {name}"], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
    passed = sum(results)
    print(f"(took {time.monotonic() - started:.0f} s)")
    print(f"browser: {passed} passed, {len(results) - passed} failed")
    return 0 if results and passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
