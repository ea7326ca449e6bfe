#!/usr/bin/env python3
"""Loads multidb's /docs in headless Chromium and fails unless the page renders every
operation of /openapi.json without a single request leaving the machine.

Usage: check_docs_page.py BASE_URL [--screenshot FILE] [--chromium PATH] [--path /docs]

Standard library only, so that CI needs nothing but Debian's chromium. The browser's
DevTools protocol would need a websocket client, so the page is read with --dump-dom
after a virtual-time budget, and its requests from a --log-net-log file.
"""

import argparse
import html.parser
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

# Long enough for Swagger UI to load its bundle, fetch the document and render it; virtual
# time only advances while nothing is loading, so a slow machine does not cut it short.
VIRTUAL_TIME_BUDGET_MS = 20000
# A hung browser must not hang CI; the render above takes a few seconds.
CHROMIUM_TIMEOUT_S = 180
# The operations named in the brief of the check: an empty document must not pass.
REQUIRED_OPERATIONS = {("GET", "/users/{id}"), ("GET", "/orders")}
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# The page is loaded under this name, mapped to the service's loopback address inside the
# browser only. Swagger UI skips some outside requests when its page is on localhost or
# 127.0.0.1 (the validator badge loads an image from validator.swagger.io otherwise), so
# the check sees the page as a person on another machine does. (.test is reserved.)
DOCS_HOST = "multidb-docs.test"
# Swagger UI breaks long paths with zero-width spaces (and <wbr>) before each slash.
ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


class CheckFailed(Exception):
    pass


def is_local_host(host):
    """True for the loopback range, ::1 and localhost: the only hosts the page may use."""
    host = (host or "").strip("[]").lower().rstrip(".")
    if host in ("localhost", DOCS_HOST) or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_of(url):
    try:
        return urllib.parse.urlsplit(url).hostname
    except ValueError:
        return None


def is_network_url(url):
    """URLs that could reach a host; data:, blob:, about:, chrome: and the like cannot."""
    return urllib.parse.urlsplit(url).scheme in ("http", "https", "ws", "wss", "ftp")


def fetch_operations(base_url):
    """The (METHOD, path) pairs of the service's own /openapi.json."""
    # No proxy from the environment: this is a loopback request by construction.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    url = base_url + "/openapi.json"
    try:
        with opener.open(url, timeout=30) as response:
            document = json.load(response)
    except Exception as error:  # any failure here is the check's failure, said plainly
        raise CheckFailed(f"could not read {url}: {error}") from error
    operations = set()
    for path, item in (document.get("paths") or {}).items():
        for method in HTTP_METHODS:
            if isinstance(item, dict) and method in item:
                operations.add((method.upper(), path))
    if not operations:
        raise CheckFailed(f"{url} lists no operations")
    return operations


class SwaggerDom(html.parser.HTMLParser):
    """Collects what Swagger UI rendered: each operation's method and path, and any
    error box it shows (a document it could not load or resolve)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.operations = set()
        self.errors = []
        self.has_swagger_root = False
        self._stack = []  # (tag, kind) of each open element; kind names the text it holds
        self._text = {}  # kind -> the text read so far inside that element
        self._method = ""  # the method of the operation being read

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        classes = set((attributes.get("class") or "").split())
        kind = None
        if "swagger-ui" in classes:
            self.has_swagger_root = True
        if "opblock-summary-method" in classes:
            kind = "method"
        elif "opblock-summary-path" in classes:
            if attributes.get("data-path"):
                self._add(attributes["data-path"])
            else:
                kind = "path"
        elif "errors-wrapper" in classes or {"loading-container", "failed"} <= classes:
            kind = "error"
        if kind:
            self._text[kind] = ""
        if tag not in self.VOID:
            self._stack.append((tag, kind))

    def handle_endtag(self, tag):
        if tag not in (open_tag for open_tag, _ in self._stack):
            return
        while self._stack:
            open_tag, kind = self._stack.pop()
            if kind:
                self._finish(kind, self._text.pop(kind, ""))
            if open_tag == tag:
                break

    def handle_data(self, data):
        for kind in self._text:
            self._text[kind] += data

    def _finish(self, kind, text):
        if kind == "method":
            self._method = text.strip().upper()
        elif kind == "path":
            self._add(text)
        else:
            self.errors.append(" ".join(text.split()))

    def _add(self, path):
        path = path.translate(ZERO_WIDTH).strip()
        if path and self._method:
            self.operations.add((self._method, path))


def read_net_log(path):
    with open(path, encoding="utf-8", errors="replace") as file:
        text = file.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # A browser that was killed leaves the events array open; Chromium's own
        # documented repair is to close it.
        try:
            return json.loads(text.rstrip().rstrip(",") + "]}")
        except json.JSONDecodeError as error:
            raise CheckFailed(f"cannot read Chromium's net log {path}: {error}") from error


def check_net_log(path):
    """Fails on any request the page made to a host that is not local, and on any
    connection or datagram to an address that is not loopback, whoever made it.

    Chromium also makes requests of its own, whatever the page (component updates,
    account and autofill queries): those have no initiating origin and are no
    navigation. They are listed, not counted: the dead proxy and the resolver rules
    stop them on the machine, which the socket check below proves.
    Returns (page request URLs, Chromium's own outside URLs)."""
    log = read_net_log(path)
    event_type = {value: name for name, value in log["constants"]["logEventTypes"].items()}
    page_urls, own_outside, outside_by_page, sockets_out = [], set(), [], []
    url_keys = ("url", "original_url", "location", "new_url")
    every_url = set()
    own_urls = set()
    udp_target = {}  # source id -> remote address of a connected UDP socket
    for event in log.get("events", []):
        name = event_type.get(event.get("type"), "?")
        params = event.get("params") or {}
        source = (event.get("source") or {}).get("id")
        for key in url_keys:
            value = params.get(key)
            if isinstance(value, str) and is_network_url(value):
                every_url.add(value)
        if name == "URL_REQUEST_START_JOB" and "url" in params:
            url = params["url"]
            initiator = params.get("initiator", "")
            request_type = params.get("request_type", "")
            # What the page loads has the page as its initiator; navigations are counted
            # as the page's too. Chromium's own requests (autofill, updates) have none.
            from_page = initiator != "not an origin" or request_type in ("main frame", "sub frame")
            if from_page:
                page_urls.append(url)
                if is_network_url(url) and not is_local_host(host_of(url)):
                    outside_by_page.append(f"{url} (initiator {initiator}, {request_type})")
            else:
                own_urls.add(url)
        # Every TCP connection attempt, to a server or to a proxy.
        if name in ("TCP_CONNECT_ATTEMPT", "TCP_CONNECT_JOB_CONNECTOR_CONNECT_START") and "address" in params:
            if not is_local_host(params["address"].rsplit(":", 1)[0]):
                sockets_out.append(f"TCP connection to {params['address']}")
        if name == "TCP_CONNECT" and "address_list" in params:
            for address in params["address_list"]:
                if not is_local_host(address.rsplit(":", 1)[0]):
                    sockets_out.append(f"TCP connection to {address}")
        # Connecting a UDP socket sends nothing (Chromium does it to learn its own
        # address for IPv6 reachability); a datagram sent on it would leave the machine.
        if name == "UDP_CONNECT" and "address" in params:
            udp_target[source] = params["address"]
        if name in ("UDP_BYTES_SENT", "SOCKET_BYTES_SENT") and source in udp_target:
            address = udp_target[source]
            if not is_local_host(address.rsplit(":", 1)[0]):
                sockets_out.append(f"UDP datagram to {address}")
    # A URL that shows up anywhere (a stream job, a redirect, a preconnect) and is neither
    # the page's own local request nor one of Chromium's own: count it against the page.
    for url in sorted(every_url - own_urls):
        if not is_local_host(host_of(url)) and not any(url in entry for entry in outside_by_page):
            outside_by_page.append(f"{url} (seen in the net log, not one of Chromium's own requests)")
    own_outside = sorted(url for url in own_urls if is_network_url(url) and not is_local_host(host_of(url)))
    problems = []
    if outside_by_page:
        problems.append(
            "the page requested resources outside this machine (a CDN or other remote "
            "dependency: /docs must be served entirely by the service):\n    "
            + "\n    ".join(outside_by_page)
        )
    if sockets_out:
        problems.append(
            "Chromium opened connections to addresses that are not loopback:\n    "
            + "\n    ".join(sorted(set(sockets_out)))
        )
    if not page_urls:
        problems.append(f"the net log {path} records no request of the page at all: is it complete?")
    if problems:
        raise CheckFailed("\n  ".join(problems))
    return page_urls, own_outside


def chromium_command(chromium, profile, net_log, proxy_port, service_ip, extra):
    """Headless Chromium that cannot reach anything but loopback: no name resolves but
    DOCS_HOST (to the service's address) and the loopback names, and every other request
    goes through a proxy on a loopback port that refuses connections (loopback bypasses
    proxies), so a CDN dependency fails to load, which the render check then sees too."""
    target = f"[{service_ip}]" if ":" in service_ip else service_ip
    resolver_rules = f"MAP {DOCS_HOST} {target}, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost, EXCLUDE [::1]"
    return [
        chromium,
        "--headless",
        # Root (CI) cannot use Chromium's sandbox; the page is the service's own.
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={profile}",
        f"--log-net-log={net_log}",
        "--net-log-capture-mode=Default",
        f"--host-resolver-rules={resolver_rules}",
        f"--proxy-server=http://127.0.0.1:{proxy_port}",
        f"--proxy-bypass-list={DOCS_HOST}",
        # Fewer of Chromium's own background requests (updates, sync, metrics): they are
        # blocked anyway, but the report is clearer without them.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--disable-breakpad",
        "--disable-field-trial-config",
        "--disable-features=NetworkTimeServiceQuerying,Translate,OptimizationHints,MediaRouter,"
        "SpellcheckService,AutofillServerCommunication",
        "--metrics-recording-only",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        # The page's console messages on stderr, shown when a check fails.
        "--enable-logging=stderr",
        "--v=0",
        f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
        *extra,
    ]


def run_chromium(chromium, work, name, proxy_port, service_ip, extra):
    """Runs Chromium once with its own profile and net log. Returns (stdout, stderr,
    net log path)."""
    profile = os.path.join(work, f"profile-{name}")
    net_log = os.path.join(work, f"net-log-{name}.json")
    env = dict(os.environ)
    # Nothing of a developer's own Chromium configuration, nor a proxy of the
    # environment (the command line's proxy wins anyway), nor a display: headless only.
    for variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "DISPLAY"):
        env.pop(variable, None)
    env["XDG_CONFIG_HOME"] = os.path.join(work, "xdg-config")
    env["XDG_CACHE_HOME"] = os.path.join(work, "xdg-cache")
    command = chromium_command(chromium, profile, net_log, proxy_port, service_ip, extra)
    try:
        done = subprocess.run(
            command, cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True,
            timeout=CHROMIUM_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as error:
        raise CheckFailed(f"Chromium did not finish within {CHROMIUM_TIMEOUT_S} s") from error
    stdout = done.stdout.decode("utf-8", "replace")
    stderr = done.stderr.decode("utf-8", "replace")
    with open(os.path.join(work, f"chromium-{name}.log"), "w", encoding="utf-8") as file:
        file.write(stderr)
    if done.returncode != 0:
        raise CheckFailed(f"Chromium exited with status {done.returncode}:\n{tail(stderr)}")
    if not os.path.exists(net_log):
        raise CheckFailed(f"Chromium wrote no net log ({net_log}):\n{tail(stderr)}")
    return stdout, stderr, net_log


def tail(text, lines=25):
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


def console_lines(stderr):
    return [line for line in stderr.splitlines() if "CONSOLE" in line]


def dead_port():
    """A loopback port bound but never listening, held until the check ends: connecting
    to it is refused at once, and nothing else can take it meanwhile."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    return holder, holder.getsockname()[1]


def check(base_url, docs_path, chromium, screenshot, expect_operations):
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not is_local_host(parts.hostname):
        raise CheckFailed(f"{base_url}: the base URL must be http(s) on a loopback host (127.0.0.1, localhost, [::1])")
    base_url = base_url.rstrip("/")
    operations = expect_operations if expect_operations is not None else fetch_operations(base_url)
    try:
        service_ip = str(ipaddress.ip_address(parts.hostname.strip("[]")))
    except ValueError:
        service_ip = "127.0.0.1"  # localhost: the servers of these checks bind IPv4
    port = f":{parts.port}" if parts.port else ""
    page = f"{parts.scheme}://{DOCS_HOST}{port}{parts.path.rstrip('/')}{docs_path}"
    work = tempfile.mkdtemp(prefix="multidb-docs-check-")
    holder, proxy_port = dead_port()
    try:
        dom, stderr, net_log = run_chromium(chromium, work, "dom", proxy_port, service_ip, ["--dump-dom", page])
        console = console_lines(stderr)
        failures = []
        try:
            page_urls, own_outside = check_net_log(net_log)
        except CheckFailed as error:
            failures.append(f"OFFLINE CHECK FAILED: {error}")
            page_urls, own_outside = [], []

        parsed = SwaggerDom()
        parsed.feed(dom)
        parsed.close()
        missing = sorted((operations | REQUIRED_OPERATIONS) - parsed.operations)
        if not parsed.has_swagger_root:
            failures.append(
                f"RENDER CHECK FAILED: {page} has no Swagger UI root (.swagger-ui) after its "
                "scripts ran: the page did not load its JavaScript, or is not Swagger UI"
            )
        if parsed.errors:
            failures.append("RENDER CHECK FAILED: Swagger UI shows errors:\n    " + "\n    ".join(parsed.errors))
        if missing:
            failures.append(
                f"RENDER CHECK FAILED: {len(missing)} of {len(operations | REQUIRED_OPERATIONS)} "
                f"operations are not rendered on {page} (rendered: {len(parsed.operations)}):\n    "
                + "\n    ".join(f"{method} {path}" for method, path in missing)
                + "\n  (a script or the document failed to load, or the operations are collapsed "
                "away: Swagger UI's docExpansion must not be \"none\")"
            )
        if failures:
            if console:
                failures.append("the page's console said:\n" + tail("\n".join(console), 15))
            raise CheckFailed("\n  ".join(failures))

        local_hosts = sorted({urllib.parse.urlsplit(url).netloc for url in page_urls})
        print(
            f"docs page: {page} ({DOCS_HOST} is {base_url} for the browser) renders all "
            f"{len(parsed.operations)} operations ({len(operations)} in /openapi.json); "
            f"{len(page_urls)} requests, all to {', '.join(local_hosts)}"
        )
        if own_outside:
            print(
                f"docs page: Chromium's own background requests, not the page's, were "
                f"refused on the machine: {', '.join(sorted({host_of(u) or u for u in own_outside}))}"
            )

        if screenshot:
            _, _, shot_log = run_chromium(
                chromium, work, "screenshot", proxy_port, service_ip,
                [f"--screenshot={os.path.abspath(screenshot)}", "--window-size=1280,1600", page],
            )
            check_net_log(shot_log)
            if not os.path.exists(screenshot):
                raise CheckFailed(f"Chromium wrote no screenshot to {screenshot}")
            print(f"docs page: screenshot of {page} in {screenshot}")
    finally:
        holder.close()
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base_url", help="a running multidb, e.g. http://127.0.0.1:8080")
    parser.add_argument("--path", default="/docs", help="the page to load (default /docs)")
    parser.add_argument("--screenshot", metavar="FILE", help="also save a 1280x1600 PNG of the page")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument(
        "--expect", action="append", metavar="'METHOD /path'",
        help="check for these operations instead of those of BASE_URL/openapi.json (for "
        "testing the check itself against a page that is not multidb's)",
    )
    args = parser.parse_args()
    expect = None
    if args.expect:
        expect = {tuple(item.split(None, 1)) for item in args.expect}
        expect = {(method.upper(), path) for method, path in expect}
    try:
        check(args.base_url, args.path, args.chromium, args.screenshot, expect)
    except CheckFailed as error:
        print(f"docs page: FAILED\n  {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
