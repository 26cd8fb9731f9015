"""The collection's write lock (vecdb.query.searcher.IndexWriteLock): what a
search holding writes off may overlap, and that neither side starves.
Correctness only: every wait below is bounded generously and only guards
against a hang."""

from __future__ import annotations

import threading

from vecdb.query.searcher import IndexWriteLock

BOUND = 10.0  # seconds: a hang, not a speed


def in_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_a_write_preparing_its_commit_does_not_hold_searches_off():
    lock, prepared, finish = IndexWriteLock(), threading.Event(), threading.Event()

    def write():
        with lock.writing() as writing:
            prepared.set()
            finish.wait(BOUND)
            writing.publish()

    writer = in_thread(write)
    assert prepared.wait(BOUND)
    epoch = lock.epoch
    with lock.paused():  # the writer has changed nothing a search sees yet
        assert lock.epoch == epoch and epoch % 2 == 0
    finish.set()
    writer.join(BOUND)
    assert not writer.is_alive() and lock.epoch == epoch + 2


def test_a_published_write_holds_searches_off_until_it_ends():
    lock, published, finish, entered = IndexWriteLock(), threading.Event(), threading.Event(), threading.Event()
    seen = []

    def write():
        with lock.writing() as writing:
            writing.publish()
            published.set()
            finish.wait(BOUND)

    def search():
        with lock.paused():
            seen.append(lock.epoch)
            entered.set()

    writer = in_thread(write)
    assert published.wait(BOUND) and lock.epoch % 2 == 1
    searcher = in_thread(search)
    assert not entered.wait(0.2)  # still held off (a longer wait would only make this surer)
    finish.set()
    assert entered.wait(BOUND)
    writer.join(BOUND)
    searcher.join(BOUND)
    assert seen == [2]  # after the write: even, moved on twice


def test_a_writer_about_to_publish_goes_before_new_searches():
    lock = IndexWriteLock()
    first_in, first_out, writer_waiting, order = threading.Event(), threading.Event(), threading.Event(), []

    def first_search():
        with lock.paused():
            first_in.set()
            first_out.wait(BOUND)

    def write():
        with lock.writing() as writing:
            writer_waiting.set()
            writing.publish()  # waits for the first search
            order.append("write")

    def later_search():
        with lock.paused():
            order.append("search")

    searches = [in_thread(first_search)]
    assert first_in.wait(BOUND)
    writer = in_thread(write)
    assert writer_waiting.wait(BOUND)
    while not lock._publishing:  # the writer is waiting to publish
        threading.Event().wait(0.001)
    searches.append(in_thread(later_search))
    first_out.set()
    for thread in (writer, *searches):
        thread.join(BOUND)
        assert not thread.is_alive()
    assert order == ["write", "search"]


def test_searches_hold_writes_off_together_and_the_writers_own_search_does_not_wait():
    lock, both_in, release = IndexWriteLock(), threading.Barrier(2, timeout=BOUND), threading.Event()

    def search():
        with lock.paused():
            both_in.wait()  # two searches inside at once
            release.wait(BOUND)

    searches = [in_thread(search), in_thread(search)]
    release.set()
    for thread in searches:
        thread.join(BOUND)
        assert not thread.is_alive()
    with lock:  # a write (published throughout) whose own thread searches
        with lock.paused():
            assert lock.epoch % 2 == 1
    assert lock.epoch == 2
