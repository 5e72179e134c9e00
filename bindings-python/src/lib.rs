//! `iii._native`: the Python extension over the iii Rust core (`iii-sdk`). Networking,
//! framing and backpressure all stay in the core; this crate converts values and errors and
//! decides, per call, between blocking (GIL released) and awaitable forms. The `iii` Python
//! package re-exports these classes with its typing, errors and the `http` decorator.
#![deny(missing_docs)]

mod channel;
mod connection_state;
mod convert;
mod dispatch;
mod errors;
mod gil;
mod http;
mod python_names;
mod refs;
mod wait;
mod worker;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    wait::remember_pid();
    module.add_class::<worker::Worker>()?;
    module.add_class::<worker::Channel>()?;
    module.add_class::<worker::FunctionRef>()?;
    module.add_class::<worker::TriggerRef>()?;
    module.add_class::<worker::TriggerTypeRef>()?;
    module.add_class::<channel::ChannelWriter>()?;
    module.add_class::<channel::ChannelReader>()?;
    module.add_class::<http::HttpResponse>()?;
    module.add_class::<dispatch::Completion>()?;
    module.add_class::<dispatch::MessageDone>()?;
    module.add_class::<connection_state::Unsubscribe>()?;
    module.add_class::<wait::CancelOnDone>()?;
    module.add_function(wrap_pyfunction!(gil::quiesce, module)?)?;
    module.add_function(wrap_pyfunction!(refs::is_channel_ref, module)?)?;
    module.add_function(wrap_pyfunction!(http::status_message, module)?)?;
    module.add_function(wrap_pyfunction!(http::headers_message, module)?)?;
    module.add_function(wrap_pyfunction!(refs::extract_channel_refs, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
