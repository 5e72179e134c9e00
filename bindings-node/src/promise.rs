//! Promises settled from the core's runtime: the future runs there, and the deferred's
//! threadsafe function brings the outcome back to the JavaScript thread, where `convert`
//! turns it into a JS value (or the error into a JS `Error` with a `code`).

use std::future::Future;

use iii_sdk::IIIError;
use napi::bindgen_prelude::*;

use crate::errors::to_js_error;

/// Runs `future` on the core's runtime and returns a promise of its outcome, converted by
/// `convert` on the JavaScript thread.
pub(crate) fn settle<'env, T, D, F, C>(
    env: &'env Env,
    future: F,
    convert: C,
) -> Result<Object<'env>>
where
    T: Send + 'static,
    D: ToNapiValue + 'static,
    F: Future<Output = std::result::Result<T, IIIError>> + Send + 'static,
    C: FnOnce(&Env, T) -> Result<D> + Send + 'static,
{
    let (deferred, promise) = env.create_deferred::<D, _>()?;
    iii_sdk::runtime().spawn(async move {
        let outcome = future.await;
        deferred.resolve(move |env: Env| match outcome {
            Ok(value) => convert(&env, value),
            Err(error) => Err(to_js_error(&env, &error)),
        });
    });
    Ok(promise)
}
