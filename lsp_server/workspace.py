"""The server's workspace index: what feeds it and what it gives the feature handlers.

Open documents go in on didOpen/didChange (indexed lazily, off the event loop), the workspace
folders of ``initialize`` are scanned in one background thread at a lower CPU priority,
``workspace/didChangeWatchedFiles`` events (sent by clients that watch files for the server, e.g.
a VS Code client's ``synchronize.fileEvents``) re-read or forget files, and ``related_for`` picks
the snippets for one request (``infill.workspace.WorkspaceIndex.related``) within
``infill.relatedChars``. Settings:
``infill.workspaceIndex``, ``infill.workspaceMaxFiles``, ``infill.workspaceMaxBytes``,
``infill.relatedChars`` (``lsp_server/settings.py``).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

from pygls.uris import from_fs_path, to_fs_path

from infill.languages import language_for_path
from infill.workspace import WorkspaceConfig, WorkspaceIndex, read_source, scan
from model.protocol import MAX_RELATED_CHARS, MAX_RELATED_TEXTS

from .settings import WorkspaceSettings

log = logging.getLogger("infill.workspace")

SCAN_NICE = 10  # the scanning thread's CPU priority, below the server's and the worker's


def too_broad(path: str) -> bool:
    """A folder that is no project: the file system's root, the home directory, the temp directory."""
    real = os.path.realpath(path)
    broad = {os.path.realpath(p) for p in (os.sep, os.path.expanduser("~"), tempfile.gettempdir())}
    return real in broad


def roots_of(workspace_folders, root_uri: str | None, root_path: str | None) -> list[str]:
    """Local folder paths from ``initialize``'s workspaceFolders, else its rootUri, else rootPath."""
    uris = [getattr(f, "uri", None) for f in (workspace_folders or [])] or [root_uri]
    paths = []
    for uri in uris:
        path = to_fs_path(uri) if isinstance(uri, str) and uri.startswith("file:") else None
        if path:
            paths.append(path)
    if not paths and isinstance(root_path, str) and root_path:
        paths.append(root_path)
    return list(dict.fromkeys(paths))


class Workspace:
    """Owns the ``WorkspaceIndex`` and its background work (one thread: scans and file events)."""

    def __init__(self, settings: WorkspaceSettings | None = None) -> None:
        self.settings = settings or WorkspaceSettings()
        self.index = WorkspaceIndex(self._config())
        self.roots: list[str] = []
        self._open: dict[str, tuple[str, str | None]] = {}  # open documents: uri -> (text, language)
        self._dirty: set[str] = set()  # open documents not yet (re)indexed
        self._lock = threading.Lock()
        self._generation = 0  # bumped to stop a scan (new settings, shutdown)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infill-workspace")
        self._started = False  # no scan before ``start`` (the settings come first)
        self.scanning = False
        self.scans = 0
        self.last_scan: dict = {}

    def _config(self) -> WorkspaceConfig:
        s = self.settings
        return WorkspaceConfig(max_files=s.max_files, max_total_bytes=s.max_bytes,
                               related_chars=min(s.related_chars, MAX_RELATED_CHARS),
                               max_snippets=min(WorkspaceConfig.max_snippets, MAX_RELATED_TEXTS))

    # ------------------------------------------------------------------ settings and scanning

    def configure(self, settings: WorkspaceSettings) -> None:
        """Take new settings; new caps or a toggled index start over (and scan again)."""
        old, self.settings = self.settings, settings
        if (old.enable, old.max_files, old.max_bytes) == (settings.enable, settings.max_files, settings.max_bytes):
            return
        self._restart()

    def start(self, roots: Iterable[str]) -> None:
        """Scan these folders in the background (when ``infill.workspaceIndex`` is on)."""
        self.roots = list(roots)
        self._started = True
        self._restart()

    def _restart(self) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
            self.index = WorkspaceIndex(self._config())
            self._dirty = set(self._open)  # open documents stay related texts
        if self._started and self.settings.enable and self.roots:
            self._submit(self._scan, generation)

    def _submit(self, fn: Callable, *args) -> None:
        try:
            self._pool.submit(fn, *args)
        except RuntimeError:  # shut down
            pass

    def _scan(self, generation: int) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SCAN_NICE)
        except (AttributeError, OSError):
            pass
        self.scanning = True
        started = time.perf_counter()
        added = 0
        try:
            for root in self.roots:
                if too_broad(root):
                    log.info("workspace: not scanning %s (too broad a folder to be a project); open documents "
                             "are still related texts", root)
                    continue
                index = self.index
                left_files = index.config.max_files - len(index)
                left_bytes = index.config.max_total_bytes - index.total_bytes
                if left_files <= 0 or left_bytes <= 0:
                    break
                for path, lang, text in scan(root, index.config, log, left_files, left_bytes):
                    if generation != self._generation:
                        return
                    uri = from_fs_path(path) or path
                    if uri not in self._open:
                        added += index.update(uri, text, lang)
                    if added % 64 == 0:
                        self._flush()
                        time.sleep(0)  # let the event loop's thread have the interpreter
        except Exception:  # a scan must never take the server down
            log.exception("workspace scan failed")
        finally:
            self.scanning = False
        self._flush()
        self.scans += 1
        self.last_scan = {"files": added, "seconds": round(time.perf_counter() - started, 2)}
        log.info("workspace index: %d files from %s in %.1f s (%s)", added, ", ".join(self.roots) or "-",
                 time.perf_counter() - started, self.index.stats())

    # ------------------------------------------------------------------ documents

    def opened(self, uri: str, text: str, lang: str | None) -> None:
        """didOpen/didChange: remember the text; it is indexed off the event loop."""
        with self._lock:
            self._open[uri] = (text, lang)
            self._dirty.add(uri)

    changed = opened

    def closed(self, uri: str) -> None:
        """didClose: the document leaves the open set; its file on disk (if any in a root) is read again."""
        with self._lock:
            self._open.pop(uri, None)
            self._dirty.discard(uri)
        self.index.set_opened(uri, False)
        self._submit(self._reread, uri, self._generation)

    def files_changed(self, changes: Iterable[tuple[str, bool]]) -> None:
        """workspace/didChangeWatchedFiles: (uri, deleted) pairs; open documents keep the editor's text."""
        for uri, deleted in changes:
            if uri in self._open:
                continue
            if deleted:
                self.index.remove(uri)
            else:
                self._submit(self._reread, uri, self._generation)

    def _reread(self, uri: str, generation: int) -> None:
        if generation != self._generation or uri in self._open:
            return
        path = to_fs_path(uri) if uri.startswith("file:") else None
        if not self.settings.enable or not path or not self._in_roots(path) or language_for_path(path) is None:
            self.index.remove(uri)
            return
        found = read_source(path, self.index.config, log)
        if found is None:
            self.index.remove(uri)
        else:
            self.index.update(uri, found[1], found[0])

    def _in_roots(self, path: str) -> bool:
        real = os.path.realpath(path)
        return any(real.startswith(os.path.realpath(r).rstrip(os.sep) + os.sep) and not too_broad(r)
                   for r in self.roots)

    def _flush(self, keep: str | None = None) -> None:
        """Index the open documents changed since; ``keep`` (the requesting one, whose own snippets are
        never offered to it) waits for the next flush."""
        with self._lock:
            pending = [(uri, *self._open[uri]) for uri in self._dirty if uri in self._open and uri != keep]
            self._dirty = {keep} & self._dirty if keep else set()
            index = self.index
        for uri, text, lang in pending:
            index.update(uri, text, lang, opened=True)

    # ------------------------------------------------------------------ requests

    def related_for(self, uri: str, text: str, offset: int, lang: str | None) -> tuple[str, ...]:
        """The related snippets for a request at ``offset`` of ``uri``'s ``text`` (run off the loop)."""
        chars = self.settings.related_chars
        if chars <= 0 or lang is None:
            return ()
        self._flush(keep=uri)
        try:
            return tuple(self.index.related(uri, text, offset, lang, min(chars, MAX_RELATED_CHARS)))
        except Exception:  # a request goes on without related texts
            log.exception("related snippets failed for %s", uri)
            return ()

    def bind(self, call: Callable, uri: str, text: str, offset: int, lang: str | None) -> Callable:
        """``call`` with ``related=`` the snippets for this request, computed when it runs, after any
        related texts the call was already given."""
        given = tuple(getattr(call, "keywords", {}).get("related") or ())

        def run():
            return call(related=given + self.related_for(uri, text, offset, lang))
        return run

    def stats(self) -> dict:
        return {**self.index.stats(), "scanning": self.scanning, "scans": self.scans, "open": len(self._open),
                "enabled": self.settings.enable, **{f"last_scan_{k}": v for k, v in self.last_scan.items()}}

    def close(self) -> None:
        with self._lock:
            self._generation += 1
        self._pool.shutdown(wait=False, cancel_futures=True)

