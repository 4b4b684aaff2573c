"""People on a real lab server without browsers: a roster sign-in posted as the form does, then a Streamlit session
over the server's websocket that opens pages, presses buttons and reruns the live fragments the server asks for,
as the browser's Streamlit client would. Each full page's response time (from the message sent until the script
finished) is kept, and every exception a page shows is counted.

Shared by the benchmarks that drive a server (bench_lesson.py --pages, bench_classroom.py --watchers), with what
they measure it by.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from galaxy_core.classroom.sign_in import SIGN_IN_PATH


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_answers(port: int) -> bool:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5).read() == b"ok"
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sign_in(port: int, name: str, code: str) -> str:
    """The session cookie ("name=value") the roster's sign-in form gives `name`; RuntimeError when refused."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = urlencode({"name": name, "code": code})
    connection.request("POST", SIGN_IN_PATH, body, {"Content-Type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    cookies = [value.split(";", 1)[0] for key, value in response.getheaders() if key.lower() == "set-cookie"]
    connection.close()
    if response.status != 303 or not cookies:
        raise RuntimeError(f"{name}'s sign-in answered {response.status}")
    return "; ".join(cookies)


class PageSession:
    """One person's Streamlit session over the websocket, with their cookie."""

    def __init__(self, port: int, cookie: str, query: str = "") -> None:
        self.url, self.cookie, self.query = f"ws://127.0.0.1:{port}/_stcore/stream", cookie, query
        self.socket = None
        self.page = ""
        self.responses: list[tuple[str, float]] = []  # (page, seconds until its script finished), each
        self.exceptions: list[str] = []  # what the pages showed as exceptions
        self.texts: list[str] = []  # the last page's words
        self.widgets: dict[str, str] = {}  # the last page's buttons and expanders: key (the end of its id): id
        self.kept: dict[str, object] = {}  # the values set on this page, sent with each rerun (as a browser does)
        self.fragments: dict[str, float] = {}  # the live fragments the page asked to rerun: id: interval

    async def connect(self) -> None:
        import websockets

        self.socket = await websockets.connect(
            self.url, subprotocols=["streamlit"], additional_headers={"Cookie": self.cookie}, max_size=2**26
        )

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
            self.socket = None

    async def open(
        self, page: str, query: str | None = None, pressed: str | None = None, expanded: str | None = None
    ) -> float:
        """Run `page` (with a link's `query`, or the session's), pressing the button of key `pressed` on it or
        opening its expander of key `expanded`; returns the seconds until its script finished."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ClientState_pb2 import ClientState
        from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

        if page != self.page:
            self.fragments.clear()
            self.kept = {}
        if expanded:
            self.kept[self.widgets[expanded]] = WidgetState(id=self.widgets[expanded], bool_value=True)
        widgets = list(self.kept.values())
        if pressed:
            widgets.append(WidgetState(id=self.widgets[pressed], trigger_value=True))
        query = self.query if query is None else query
        state = ClientState(page_name=page, query_string=query, widget_states=WidgetStates(widgets=widgets))
        self.page, self.texts, self.widgets = page, [], {}
        sent = time.monotonic()
        await self.socket.send(BackMsg(rerun_script=state).SerializeToString())
        while not await self._receive(fragment=False):
            pass
        self.responses.append((page, time.monotonic() - sent))
        return self.responses[-1][1]

    async def watch(self, done: Callable[[], bool], timeout: float) -> bool:
        """Keep the page open, rerunning its live fragments when they are due, until `done()` or `timeout` seconds;
        returns done()."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ClientState_pb2 import ClientState
        from streamlit.proto.WidgetStates_pb2 import WidgetStates

        deadline = time.monotonic() + timeout
        due = {fragment: time.monotonic() + interval for fragment, interval in self.fragments.items()}
        while not done() and time.monotonic() < deadline:
            fragment = min(due, key=due.get, default=None)
            if fragment is None:
                await asyncio.sleep(0.5)
                continue
            await asyncio.sleep(max(0.0, min(due[fragment], deadline) - time.monotonic()))
            if time.monotonic() >= deadline:
                break
            state = ClientState(
                page_name=self.page,
                query_string=self.query,
                widget_states=WidgetStates(widgets=list(self.kept.values())),
                fragment_id=fragment,
                is_auto_rerun=True,
            )
            await self.socket.send(BackMsg(rerun_script=state).SerializeToString())
            while not await self._receive(fragment=True):
                pass
            due = {name: time.monotonic() + interval for name, interval in self.fragments.items()}
        return done()

    async def _receive(self, fragment: bool) -> bool:
        """Read one message; True when it says the script (or the fragment) finished."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        message = ForwardMsg()
        message.ParseFromString(await self.socket.recv())
        kind = message.WhichOneof("type")
        if kind == "auto_rerun":
            self.fragments[message.auto_rerun.fragment_id] = message.auto_rerun.interval
        elif kind == "stop_auto_rerun":
            for fragment_id in message.stop_auto_rerun.fragment_ids:
                self.fragments.pop(fragment_id, None)
        elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            self._read_element(message.delta.new_element)
        elif kind == "delta" and message.delta.WhichOneof("type") == "add_block":
            block = message.delta.add_block
            if block.WhichOneof("type") == "expandable" and block.expandable.id:
                self.widgets[block.expandable.id.rsplit("-", 1)[-1]] = block.expandable.id
        elif kind == "page_info_changed" and not fragment:
            self.query = message.page_info_changed.query_string  # the URL the page wrote
        return kind == "script_finished"

    def _read_element(self, element) -> None:
        kind = element.WhichOneof("type")
        if kind == "exception":
            where = " <- ".join(line.strip() for line in element.exception.stack_trace[-3:])
            self.exceptions.append(f"{self.page}: {element.exception.type}: {element.exception.message} ({where})")
        elif kind == "button":
            self.widgets[element.button.id.rsplit("-", 1)[-1]] = element.button.id
        elif kind in ("markdown", "alert", "text", "heading"):
            self.texts.append(getattr(element, kind).body)
