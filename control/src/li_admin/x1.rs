//! The X1 operations of ETSI TS 103 221-1 in a JSON mapping: a request is
//! `{"operation": "<name>", …fields with the standard's names}`; the reply is
//! `{"operation": "<name>Response", …}` or an `ErrorResponse`.

use relay::li::tasks::{DestinationDetails, TaskDetails, TaskError};
use relay::li::{DId, LiTasks, Xid};
use serde::Deserialize;
use serde_json::{json, Value};

/// What an operation did to the task set (the daemon re-runs matching on a change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    TasksChanged,
    DestinationsChanged,
}

/// An HTTP status and a JSON body.
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub effect: Effect,
}

fn error(status: u16, code: &str, description: impl Into<String>) -> Reply {
    Reply {
        status,
        body: json!({
            "operation": "ErrorResponse",
            "errorInformation": {"errorCode": code, "errorDescription": description.into()},
        }),
        effect: Effect::None,
    }
}

/// A request that could not be understood.
pub fn malformed(description: impl Into<String>) -> Reply {
    error(400, "RequestSyntaxError", description)
}

fn ok(operation: &str, effect: Effect) -> Reply {
    Reply {
        status: 200,
        body: json!({"operation": format!("{operation}Response"), "ok": "AcknowledgedAndCompleted"}),
        effect,
    }
}

fn refused(e: TaskError) -> Reply {
    let (status, code) = match e {
        TaskError::UnknownXid => (404, "XIDNotFound"),
        TaskError::UnknownDid => (404, "DIDNotFound"),
        TaskError::DuplicateXid => (409, "XIDAlreadyExists"),
        TaskError::DuplicateDid => (409, "DIDAlreadyExists"),
        TaskError::DestinationInUse => (409, "DIDInUse"),
        TaskError::Io(_) | TaskError::Corrupt(_) => (500, "GenericError"),
        _ => (422, "InvalidRequest"),
    };
    // TaskError messages never name a target, an XID or a dId.
    error(status, code, e.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WithTask {
    task_details: TaskDetails,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WithDestination {
    destination_details: DestinationDetails,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WithXid {
    #[serde(rename = "xId")]
    x_id: Xid,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WithDid {
    #[serde(rename = "dId")]
    d_id: DId,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Nothing {}

fn fields<T: serde::de::DeserializeOwned>(operation: &str, v: Value) -> Result<T, Reply> {
    serde_json::from_value(v).map_err(|e| malformed(format!("{operation}: {e}")))
}

/// Runs one X1 request (already authenticated) against the tasks.
pub fn handle(tasks: &mut LiTasks, body: &[u8]) -> Reply {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return malformed(format!("body is not JSON: {e}")),
    };
    let Value::Object(mut map) = v else {
        return malformed("body must be a JSON object");
    };
    let operation = match map.remove("operation") {
        Some(Value::String(s)) => s,
        Some(_) => return malformed("\"operation\" must be a string"),
        None => return malformed("missing \"operation\""),
    };
    match run(tasks, &operation, Value::Object(map)) {
        Ok(r) | Err(r) => r,
    }
}

fn run(tasks: &mut LiTasks, op: &str, v: Value) -> Result<Reply, Reply> {
    Ok(match op {
        "Ping" => {
            fields::<Nothing>(op, v)?;
            ok(op, Effect::None)
        }
        "ActivateTask" => {
            let r: WithTask = fields(op, v)?;
            tasks.activate_task(r.task_details).map_err(refused)?;
            ok(op, Effect::TasksChanged)
        }
        "ModifyTask" => {
            let r: WithTask = fields(op, v)?;
            tasks.modify_task(r.task_details).map_err(refused)?;
            ok(op, Effect::TasksChanged)
        }
        "DeactivateTask" => {
            let r: WithXid = fields(op, v)?;
            tasks.deactivate_task(&r.x_id).map_err(refused)?;
            ok(op, Effect::TasksChanged)
        }
        "GetTaskDetails" => {
            let r: WithXid = fields(op, v)?;
            let t = tasks
                .task(&r.x_id)
                .ok_or_else(|| refused(TaskError::UnknownXid))?;
            Reply {
                status: 200,
                body: json!({
                    "operation": "GetTaskDetailsResponse",
                    "taskResponseDetails": {
                        "taskDetails": t,
                        "taskStatus": {"provisioningStatus": "complete"},
                    },
                }),
                effect: Effect::None,
            }
        }
        "CreateDestination" => {
            let r: WithDestination = fields(op, v)?;
            tasks
                .create_destination(r.destination_details)
                .map_err(refused)?;
            ok(op, Effect::DestinationsChanged)
        }
        "ModifyDestination" => {
            let r: WithDestination = fields(op, v)?;
            tasks
                .modify_destination(r.destination_details)
                .map_err(refused)?;
            ok(op, Effect::DestinationsChanged)
        }
        "RemoveDestination" => {
            let r: WithDid = fields(op, v)?;
            tasks.remove_destination(&r.d_id).map_err(refused)?;
            ok(op, Effect::DestinationsChanged)
        }
        "GetDestinationDetails" => {
            let r: WithDid = fields(op, v)?;
            let d = tasks
                .destination(&r.d_id)
                .ok_or_else(|| refused(TaskError::UnknownDid))?;
            Reply {
                status: 200,
                body: json!({
                    "operation": "GetDestinationDetailsResponse",
                    "destinationResponseDetails": {
                        "destinationDetails": d,
                        "destinationStatus": "operational",
                    },
                }),
                effect: Effect::None,
            }
        }
        "ListAllDetails" => {
            fields::<Nothing>(op, v)?;
            let xids: Vec<String> = tasks.tasks().map(|t| t.x_id.to_string()).collect();
            let dids: Vec<String> = tasks.destinations().map(|d| d.d_id.to_string()).collect();
            Reply {
                status: 200,
                body: json!({"operation": "ListAllDetailsResponse", "listOfXIDs": xids, "listOfDIDs": dids}),
                effect: Effect::None,
            }
        }
        other => {
            let shown: String = other.chars().take(40).collect();
            return Err(malformed(format!(
                "unknown operation {shown:?} (ActivateTask, ModifyTask, DeactivateTask, \
                 GetTaskDetails, CreateDestination, ModifyDestination, RemoveDestination, \
                 GetDestinationDetails, ListAllDetails, Ping)"
            )));
        }
    })
}
