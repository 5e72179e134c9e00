//! Answers from handlers written in another language: the handler gets a [`Reply`] to answer
//! through once (a result, a result as JSON text, or a failure), and the core waits on the
//! matching [`Answer`]; a handler that never answers fails its invocation with a clear error.

use std::sync::{Mutex, PoisonError};

use iii_protocol::codes::INVOCATION_FAILED;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::IIIError;

/// A handler's outcome.
pub type Outcome = Result<Value, IIIError>;

/// The handler's side: answer once.
#[derive(Debug)]
pub struct Reply(Mutex<Option<oneshot::Sender<Outcome>>>);

/// The core's side: the handler's answer.
#[derive(Debug)]
pub struct Answer(oneshot::Receiver<Outcome>);

/// A reply slot and the answer it gives.
pub fn reply() -> (Reply, Answer) {
    let (sender, receiver) = oneshot::channel();
    (Reply(Mutex::new(Some(sender))), Answer(receiver))
}

impl Reply {
    /// Answers with `outcome`; `false` when the invocation was answered already.
    pub fn answer(&self, outcome: Outcome) -> bool {
        let sender = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        sender.is_some_and(|sender| {
            let _ = sender.send(outcome);
            true
        })
    }

    /// Answers with a result given as JSON text (`None` is `null`); text that is not JSON
    /// fails the invocation.
    pub fn answer_json(&self, json: Option<&str>) -> bool {
        self.answer(match json.map(serde_json::from_str) {
            None => Ok(Value::Null),
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) => Err(IIIError::Handler(format!(
                "the handler's result is not JSON: {error}"
            ))),
        })
    }

    /// Fails the invocation: the caller gets `code` (`invocation_failed` when `None`),
    /// `message` and `stacktrace`.
    pub fn fail(&self, code: Option<String>, message: String, stacktrace: Option<String>) -> bool {
        self.answer(Err(IIIError::Invocation {
            code: code.unwrap_or_else(|| INVOCATION_FAILED.to_string()),
            message,
            stacktrace,
        }))
    }
}

impl Answer {
    /// Waits for the answer; a reply dropped unanswered fails with `unanswered`.
    pub async fn wait(self, unanswered: &str) -> Outcome {
        self.0
            .await
            .unwrap_or_else(|_| Err(IIIError::Handler(unanswered.to_string())))
    }

    /// The answer given so far (for a handler that has returned), or a failure with
    /// `unanswered`.
    pub fn now(mut self, unanswered: &str) -> Outcome {
        self.0
            .try_recv()
            .unwrap_or_else(|_| Err(IIIError::Handler(unanswered.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_once_and_reports_no_answer() {
        let (reply, answer) = reply();
        assert!(reply.answer_json(Some("[1]")));
        assert!(!reply.fail(None, "late".into(), None));
        assert_eq!(answer.now("none").ok(), Some(serde_json::json!([1])));
        let (reply, answer) = super::reply();
        drop(reply);
        assert_eq!(
            answer.now("none").err().map(|e| e.to_string()),
            Some("none".into())
        );
        let (reply, answer) = super::reply();
        reply.fail(None, "boom".into(), None);
        assert_eq!(
            answer.now("none").err().map(|e| e.code().to_string()),
            Some(INVOCATION_FAILED.into())
        );
        let (reply, answer) = super::reply();
        reply.answer_json(Some("not json"));
        assert_eq!(
            answer.now("none").err().map(|e| e.kind()),
            Some(crate::ErrorKind::Handler)
        );
    }
}
