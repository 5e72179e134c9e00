//! Converting between Python values and JSON, the one shape the wire carries. Channel refs
//! found anywhere in a handler's input (found by the core) become live `ChannelReader` /
//! `ChannelWriter` objects;
//! on the way out, objects with `model_dump()` (pydantic-style models, refs) are dumped, and
//! live channel ends are sent as their refs.

use iii_sdk::PathStep;
use iii_sdk::binding::{LiveEnd, live_ends};
use iii_sdk::channel::WriteQueue;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

use crate::channel::{ChannelReader, ChannelWriter};

/// How deep a value may nest before conversion refuses it (a cycle, most likely).
const MAX_DEPTH: usize = 256;

/// `value` as a Python object; refs become live channel ends connecting to `address` (the
/// core finds them, with their paths: [`live_ends`]).
pub(crate) fn to_py<'py>(
    py: Python<'py>,
    value: &Value,
    address: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let mut object = plain_to_py(py, value)?;
    for found in live_ends(address, value) {
        let end = match found.end {
            LiveEnd::Reader(reader) => Bound::new(py, ChannelReader::from_core(reader))?.into_any(),
            LiveEnd::Writer(writer) => {
                Bound::new(py, ChannelWriter::from_queue(WriteQueue::over(writer)))?.into_any()
            }
        };
        let Some((last, parents)) = found.path.split_last() else {
            object = end;
            continue;
        };
        let mut holder = object.clone();
        for step in parents {
            holder = holder.get_item(step_key(py, step)?)?;
        }
        holder.set_item(step_key(py, last)?, end)?;
    }
    Ok(object)
}

/// A path step as the Python key or index it is.
fn step_key<'py>(py: Python<'py>, step: &PathStep) -> PyResult<Bound<'py, PyAny>> {
    Ok(match step {
        PathStep::Key(key) => PyString::new(py, key).into_any(),
        PathStep::Index(index) => index.into_pyobject(py)?.into_any(),
    })
}

/// `value` as plain Python values (dicts, lists, str, int, float, bool, None).
fn plain_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(flag) => PyBool::new(py, *flag).to_owned().into_any(),
        Value::Number(number) => number_to_py(py, number)?,
        Value::String(text) => PyString::new(py, text).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(plain_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, plain_to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

fn number_to_py<'py>(py: Python<'py>, number: &Number) -> PyResult<Bound<'py, PyAny>> {
    if let Some(int) = number.as_i64() {
        return Ok(int.into_pyobject(py)?.into_any());
    }
    if let Some(int) = number.as_u64() {
        return Ok(int.into_pyobject(py)?.into_any());
    }
    Ok(PyFloat::new(py, number.as_f64().unwrap_or(f64::NAN)).into_any())
}

/// `object` as JSON.
pub(crate) fn from_py(object: &Bound<'_, PyAny>) -> PyResult<Value> {
    from_py_at(object, 0)
}

fn from_py_at(object: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyTypeError::new_err(
            "value nests too deeply to send as JSON (a cycle?)",
        ));
    }
    if object.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(flag) = object.cast::<PyBool>() {
        return Ok(Value::Bool(flag.is_true()));
    }
    if object.is_instance_of::<PyInt>() {
        if let Ok(int) = object.extract::<i64>() {
            return Ok(Value::from(int));
        }
        if let Ok(int) = object.extract::<u64>() {
            return Ok(Value::from(int));
        }
        return Err(PyTypeError::new_err("integer too large to send as JSON"));
    }
    if let Ok(float) = object.cast::<PyFloat>() {
        return Number::from_f64(float.value())
            .map(Value::Number)
            .ok_or_else(|| PyTypeError::new_err("NaN and infinity cannot be sent as JSON"));
    }
    if let Ok(text) = object.cast::<PyString>() {
        return Ok(Value::String(text.to_cow()?.into_owned()));
    }
    if let Ok(dict) = object.cast::<PyDict>() {
        let mut map = Map::new();
        for (key, item) in dict.iter() {
            let key = match key.cast::<PyString>() {
                Ok(text) => text.to_cow()?.into_owned(),
                Err(_) => key.str()?.to_cow()?.into_owned(),
            };
            map.insert(key, from_py_at(&item, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    if object.is_instance_of::<PyList>() || object.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for item in object.try_iter()? {
            items.push(from_py_at(&item?, depth + 1)?);
        }
        return Ok(Value::Array(items));
    }
    if let Ok(reader) = object.cast::<ChannelReader>() {
        return Ok(Value::from(reader.get().channel_ref()));
    }
    if let Ok(writer) = object.cast::<ChannelWriter>() {
        return Ok(Value::from(writer.get().channel_ref()));
    }
    if object.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(
            "bytes cannot be sent as JSON: stream them through a channel",
        ));
    }
    if object.hasattr("model_dump")? {
        let dumped = object.call_method0("model_dump")?;
        return from_py_at(&dumped, depth + 1);
    }
    Err(PyTypeError::new_err(format!(
        "{} is not JSON serializable",
        object.get_type().name()?
    )))
}
