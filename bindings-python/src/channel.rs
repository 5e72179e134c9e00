//! `ChannelWriter` and `ChannelReader` for Python, over the core's channel ends.
//!
//! Methods the channel guide calls both ways (`writer.write(b)` in plain code, `await writer.write(b)`
//! in async code) decide by the caller's thread: with an asyncio loop running they return an
//! awaitable, otherwise they block with the GIL released. A writer's operations pass through
//! one ordered queue with a byte window ([`iii_sdk::channel::WriteQueue`]): writes keep their call order
//! however they are awaited (or not), and a blocking write returns once its bytes are within
//! the window, so plain code never queues more than the window.

use std::sync::Arc;

use bytes::Bytes;
use iii_sdk::StreamChannelRef;
use pyo3::exceptions::{PyStopAsyncIteration, PyTypeError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyByteArray, PyBytes, PyString};

use crate::errors::IntoPyResult;
use crate::wait::{acknowledged, awaitable, block_on, in_running_loop, settled};
use iii_sdk::channel::{WriteAck, WriteOp, WriteQueue};

/// The writing end of a channel. Refs to it arrive in handler input as live objects.
#[pyclass(module = "iii.channels", frozen)]
pub(crate) struct ChannelWriter {
    queue: Arc<WriteQueue>,
}

impl ChannelWriter {
    /// Wraps the ordered queue of a core writer (an HTTP response's, say).
    pub(crate) fn from_queue(queue: Arc<WriteQueue>) -> Self {
        Self { queue }
    }

    /// The ref of this end.
    pub(crate) fn channel_ref(&self) -> StreamChannelRef {
        self.queue.writer().channel_ref().clone()
    }

    /// Runs `op` the caller's way: awaitable under a running loop, else blocking.
    fn run<'py>(
        &self,
        py: Python<'py>,
        op: WriteOp,
        (name, async_name): (&str, &str),
    ) -> PyResult<Bound<'py, PyAny>> {
        let ack = self.queue.push(op);
        if in_running_loop(py)? {
            return acknowledged(py, ack);
        }
        match ack {
            WriteAck::Now(outcome) => outcome.py()?,
            later => block_on(py, name, async_name, later.wait())?.py()?,
        }
        Ok(py.None().into_bound(py))
    }

    fn run_async<'py>(&self, py: Python<'py>, op: WriteOp) -> PyResult<Bound<'py, PyAny>> {
        acknowledged(py, self.queue.push(op))
    }
}

/// The bytes of `data`: `bytes`, `bytearray`, `memoryview` or any buffer; `str` as UTF-8.
fn payload(data: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(bytes) = data.cast::<PyBytes>() {
        // `bytes` are immutable: the frame borrows them (no copy) until it is sent.
        return Ok(Bytes::from_owner(PyBackedBytes::from(bytes.clone())));
    }
    if let Ok(text) = data.cast::<PyString>() {
        return Ok(Bytes::copy_from_slice(text.to_cow()?.as_bytes()));
    }
    if let Ok(array) = data.cast::<PyByteArray>() {
        return Ok(Bytes::from(array.to_vec()));
    }
    match data.call_method0("__bytes__").or_else(|_| {
        data.py()
            .import("builtins")?
            .getattr("bytes")?
            .call1((data,))
    }) {
        Ok(bytes) => match bytes.cast_into::<PyBytes>() {
            Ok(bytes) => Ok(Bytes::from_owner(PyBackedBytes::from(bytes))),
            Err(_) => Err(PyTypeError::new_err("write() takes bytes-like data or str")),
        },
        Err(_) => Err(PyTypeError::new_err("write() takes bytes-like data or str")),
    }
}

#[pymethods]
impl ChannelWriter {
    /// Writes `data` (bytes-like, or str as UTF-8). Blocks until sent in plain code; returns
    /// an awaitable under a running asyncio loop. Either way writes keep their call order,
    /// and a full channel makes the writer wait rather than queue.
    fn write<'py>(&self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let data = payload(data)?;
        self.run(py, WriteOp::Write(data), ("write", "write_async"))
    }

    /// Awaitable write.
    fn write_async<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let data = payload(data)?;
        self.run_async(py, WriteOp::Write(data))
    }

    /// Sends a text message (for progress or metadata), separate from the byte stream.
    fn send_message<'py>(&self, py: Python<'py>, message: String) -> PyResult<Bound<'py, PyAny>> {
        self.run(
            py,
            WriteOp::Message(message),
            ("send_message", "send_message_async"),
        )
    }

    /// Awaitable `send_message`.
    fn send_message_async<'py>(
        &self,
        py: Python<'py>,
        message: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.run_async(py, WriteOp::Message(message))
    }

    /// Ends the stream cleanly; the reader sees a complete stream once it has read
    /// everything written before.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.run(py, WriteOp::Close, ("close", "close_async"))
    }

    /// Awaitable `close`.
    fn close_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.run_async(py, WriteOp::Close)
    }

    /// Ends the stream as failed: the reader gets `ChannelAborted(reason)`, never a clean end.
    #[pyo3(signature = (reason = ""))]
    fn abort<'py>(&self, py: Python<'py>, reason: &str) -> PyResult<Bound<'py, PyAny>> {
        self.run(
            py,
            WriteOp::Abort(reason.to_string()),
            ("abort", "abort_async"),
        )
    }

    /// Awaitable `abort`.
    #[pyo3(signature = (reason = ""))]
    fn abort_async<'py>(&self, py: Python<'py>, reason: &str) -> PyResult<Bound<'py, PyAny>> {
        self.run_async(py, WriteOp::Abort(reason.to_string()))
    }

    /// Writes `data` if given, then closes (the stream-style ending).
    #[pyo3(signature = (data = None))]
    fn end<'py>(
        &self,
        py: Python<'py>,
        data: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(data) = data {
            // A failed write fails the close after it too, which reports it.
            drop(self.queue.push(WriteOp::Write(payload(data)?)));
        }
        self.run(py, WriteOp::Close, ("end", "close_async"))
    }

    /// The writer as a stream (`stream.write(data)`, `stream.end()`): the writer itself.
    #[getter]
    fn stream(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// This end's ref as a plain dict.
    #[getter(channel_ref)]
    fn get_channel_ref<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        ref_dict(py, self.queue.writer().channel_ref())
    }

    /// What this writer has written so far: `{"bytes", "frames", "messages",
    /// "blocked_secs"}` (`blocked_secs`: time writes waited for a slow reader).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        stats_dict(py, self.queue.writer().stats())
    }

    fn __repr__(&self) -> String {
        let channel_id = &self.queue.writer().channel_ref().channel_id;
        format!("<ChannelWriter channel_id={channel_id}>")
    }
}

/// A channel end's figures as a dict.
fn stats_dict(py: Python<'_>, stats: iii_sdk::ChannelStats) -> PyResult<Bound<'_, PyAny>> {
    let dict = pyo3::types::PyDict::new(py);
    dict.set_item("bytes", stats.bytes)?;
    dict.set_item("frames", stats.frames)?;
    dict.set_item("messages", stats.messages)?;
    dict.set_item("blocked_secs", stats.blocked.as_secs_f64())?;
    Ok(dict.into_any())
}

/// A ref as a plain dict (not materialized).
pub(crate) fn ref_dict<'py>(
    py: Python<'py>,
    channel_ref: &StreamChannelRef,
) -> PyResult<Bound<'py, PyAny>> {
    let dict = pyo3::types::PyDict::new(py);
    dict.set_item("channel_id", &channel_ref.channel_id)?;
    dict.set_item("access_key", &channel_ref.access_key)?;
    dict.set_item("direction", channel_ref.direction.to_string())?;
    Ok(dict.into_any())
}

/// The reading end of a channel. Iterate it (`async for chunk in reader`, or `for` in plain
/// code), or `read_all()`; text messages go to `on_message` callbacks.
#[pyclass(module = "iii.channels", frozen)]
pub(crate) struct ChannelReader {
    inner: Arc<iii_sdk::ChannelReader>,
}

impl ChannelReader {
    /// Wraps a core reader.
    pub(crate) fn from_core(reader: iii_sdk::ChannelReader) -> Self {
        Self {
            inner: Arc::new(reader),
        }
    }

    /// The ref of this end.
    pub(crate) fn channel_ref(&self) -> StreamChannelRef {
        self.inner.channel_ref().clone()
    }

    /// An awaitable of the next chunk as `bytes`, or of `at_end(py)` at the clean end: settled
    /// at once when a chunk is at hand (no trip through the runtime while data flows).
    fn next_awaitable<'py>(
        &self,
        py: Python<'py>,
        at_end: fn(Python<'_>) -> PyResult<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let item = move |py: Python<'_>, chunk: Option<Bytes>| match chunk {
            Some(bytes) => Ok(PyBytes::new(py, &bytes).into_any().unbind()),
            None => at_end(py),
        };
        if let Some(chunk) = self.inner.try_next_binary() {
            return settled(py, chunk.py().and_then(|chunk| item(py, chunk)));
        }
        let reader = self.inner.clone();
        awaitable(py, async move {
            let chunk = reader.next_binary().await.py()?;
            crate::gil::attach_or_err(|py| item(py, chunk))
        })
    }
}

fn to_bytes(py: Python<'_>, chunk: Option<Bytes>) -> Py<PyAny> {
    match chunk {
        Some(bytes) => PyBytes::new(py, &bytes).into_any().unbind(),
        None => py.None(),
    }
}

#[pymethods]
impl ChannelReader {
    /// The next chunk of bytes, or `None` at the end of a complete stream (an aborted or lost
    /// writer raises). Awaitable under a running asyncio loop, else blocking.
    fn next_chunk<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let reader = self.inner.clone();
        if in_running_loop(py)? {
            return self.next_chunk_async(py);
        }
        let chunk = block_on(py, "next_chunk", "next_chunk_async", async move {
            reader.next_binary().await
        })?
        .py()?;
        Ok(to_bytes(py, chunk).into_bound(py))
    }

    /// Awaitable `next_chunk`.
    fn next_chunk_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.next_awaitable(py, |py| Ok(py.None()))
    }

    /// Everything up to the end of the stream, as one `bytes`. Awaitable under a running
    /// asyncio loop, else blocking.
    fn read_all<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if in_running_loop(py)? {
            return self.read_all_async(py);
        }
        let reader = self.inner.clone();
        let data = block_on(py, "read_all", "read_all_async", async move {
            reader.read_all().await
        })?
        .py()?;
        Ok(PyBytes::new(py, &data).into_any())
    }

    /// Awaitable `read_all`.
    fn read_all_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let reader = self.inner.clone();
        awaitable(py, async move {
            let data = reader.read_all().await.py()?;
            crate::gil::attach_or_err(|py| Ok(PyBytes::new(py, &data).into_any().unbind()))
        })
    }

    /// Calls `callback(text)` for every text message the writer sends. Registering starts
    /// receiving (no read is needed). A coroutine function's coroutines run on the loop that
    /// registered the callback (or iii's own loop).
    fn on_message(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        let target = crate::dispatch::CallbackTarget::capture(py, callback)?;
        let reader = self.inner.clone();
        iii_sdk::runtime().spawn(async move {
            reader
                .on_message(move |text| target.call_with_text(text))
                .await;
        });
        Ok(())
    }

    /// Stops reading: the writer's next write fails with `ReaderClosed`.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let reader = self.inner.clone();
        if in_running_loop(py)? {
            return awaitable(py, async move {
                reader.close().await;
                Ok(())
            });
        }
        block_on(py, "close", "close", async move { reader.close().await })?;
        Ok(py.None().into_bound(py))
    }

    /// The reader as a stream: the reader itself (it iterates).
    #[getter]
    fn stream(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// This end's ref as a plain dict.
    #[getter(channel_ref)]
    fn get_channel_ref<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        ref_dict(py, self.inner.channel_ref())
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.next_awaitable(py, |_| Err(PyStopAsyncIteration::new_err(())))
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let reader = self.inner.clone();
        let chunk = block_on(py, "next", "__anext__", async move {
            reader.next_binary().await
        })?
        .py()?;
        Ok(chunk.map(|bytes| PyBytes::new(py, &bytes).into_any().unbind()))
    }

    /// What this reader has received so far: `{"bytes", "frames", "messages",
    /// "blocked_secs"}` (`blocked_secs`: time reads waited for data).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        stats_dict(py, self.inner.stats())
    }

    fn __repr__(&self) -> String {
        format!(
            "<ChannelReader channel_id={}>",
            self.inner.channel_ref().channel_id
        )
    }
}
