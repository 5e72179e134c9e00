//! The published client's channel-ref helpers (`iii.helpers.is_channel_ref`,
//! `extract_channel_refs`) over the core's ref finder, so the shape of a ref and the walk
//! through a payload stay defined once.

use iii_sdk::protocol::channel::path_text;
use iii_sdk::protocol::{StreamChannelRef, find_channel_refs};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::from_py;

/// Whether `value` is a dict shaped as a channel ref (`channel_id`, `access_key`, and a
/// `direction` of `read` or `write`).
#[pyfunction]
pub(crate) fn is_channel_ref(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    if !value.is_instance_of::<PyDict>() {
        return Ok(false);
    }
    Ok(StreamChannelRef::from_value(&from_py(value)?).is_some())
}

/// Every channel ref in `value`, at any depth, as `(path, ref dict)` with paths such as
/// `items[0].writer` (live channel ends count as their refs).
#[pyfunction]
pub(crate) fn extract_channel_refs<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
) -> PyResult<Vec<(String, Bound<'py, PyDict>)>> {
    let value = from_py(value)?;
    let mut found = Vec::new();
    for (path, channel_ref) in find_channel_refs(&value) {
        let dict = PyDict::new(py);
        dict.set_item("channel_id", &channel_ref.channel_id)?;
        dict.set_item("access_key", &channel_ref.access_key)?;
        dict.set_item("direction", channel_ref.direction.as_str())?;
        found.push((path_text(&path), dict));
    }
    Ok(found)
}
