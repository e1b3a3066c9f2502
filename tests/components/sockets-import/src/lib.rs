//! Opens a TCP connection, which makes the component import `wasi:sockets/*`. The host
//! must refuse it at load, naming the import; it must never run.

use relo_sdk::{StepContext, StepError};
use serde_json::Value;

#[relo_sdk::step]
fn connect(_: &StepContext, _: Value) -> Result<Value, StepError> {
    let result = match std::net::TcpStream::connect("127.0.0.1:9") {
        Ok(stream) => format!("connected: {stream:?}"),
        Err(error) => format!("error: {error}"),
    };
    Ok(Value::String(result))
}
