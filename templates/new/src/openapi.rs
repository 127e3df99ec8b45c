//! The API as an OpenAPI 3.1 document (`GET /openapi.json`), built from the JSON Schemas the
//! macros derive for the commands: the schemas `cargo cqrs schema export` writes, so the two
//! never disagree.

use cqrs_runtime::Aggregate;
use cqrs_runtime::schema::aggregates;
use serde_json::{Map, Value, json};

use crate::task::Task;

/// The document.
pub fn document() -> Value {
    let mut schemas = Map::new();
    let mut commands = Vec::new();
    let task = aggregates().into_iter().find(|a| a.aggregate_type == Task::TYPE);
    for command in task.map(|t| t.commands).unwrap_or_default() {
        // Each command's schema is a whole JSON Schema document: its own `$id` makes its
        // `$ref`s to its `$defs` resolve inside it.
        let mut schema = command.schema;
        if let Some(object) = schema.as_object_mut() {
            object.remove("$schema");
            object.insert("$id".into(), json!(format!("urn:{}:task:command:{}", env!("CARGO_PKG_NAME"), command.name)));
        }
        commands.push(json!({
            "type": "object",
            "title": command.name,
            "required": [command.name],
            "properties": { command.name.clone(): { "$ref": format!("#/components/schemas/{}", command.name) } },
            "additionalProperties": false,
        }));
        schemas.insert(command.name, schema);
    }
    schemas.insert("TaskCommand".into(), json!({ "oneOf": commands }));
    schemas.insert("Executed".into(), json!({
        "type": "object",
        "required": ["id", "version", "events", "duplicate"],
        "properties": {
            "id": { "type": "string" },
            "version": { "type": "integer", "minimum": 0 },
            "events": { "type": "array", "items": { "type": "string" } },
            "duplicate": { "type": "boolean" },
        },
    }));
    schemas.insert("TaskView".into(), json!({
        "type": "object",
        "required": ["id", "title", "priority", "completed", "version"],
        "properties": {
            "id": { "type": "string" },
            "title": { "type": "string" },
            "priority": { "type": "integer", "minimum": 0, "maximum": 255 },
            "completed": { "type": "boolean" },
            "version": { "type": "integer", "minimum": 0 },
        },
    }));
    schemas.insert("Error".into(), json!({
        "type": "object",
        "required": ["error", "message"],
        "properties": { "error": { "type": "string" }, "message": { "type": "string" } },
    }));
    let id = json!({
        "name": "id", "in": "path", "required": true,
        "schema": { "type": "string", "minLength": 1, "maxLength": crate::api::MAX_ID_LEN },
    });
    let error = |description: &str| json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
    });
    let ok = |schema: Value| json!({
        "description": "OK",
        "content": { "application/json": { "schema": schema } },
    });
    json!({
        "openapi": "3.1.0",
        "info": { "title": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION") },
        "paths": {
            "/tasks": { "get": {
                "summary": "Every task",
                "responses": { "200": ok(json!({ "type": "array", "items": { "$ref": "#/components/schemas/TaskView" } })) },
            } },
            "/tasks/{id}": { "get": {
                "summary": "One task, from the read model",
                "parameters": [id.clone()],
                "responses": {
                    "200": ok(json!({ "$ref": "#/components/schemas/TaskView" })),
                    "400": error("The id is not valid"),
                    "404": error("No such task"),
                },
            } },
            "/tasks/{id}/commands": { "post": {
                "summary": "Run a command on a task",
                "description": "With an Idempotency-Key, the command runs once: sent again with the same key, it is answered with its first run's events and `duplicate: true`.",
                "parameters": [id, {
                    "name": "Idempotency-Key", "in": "header", "required": false,
                    "schema": { "type": "string", "minLength": 1, "maxLength": crate::api::MAX_KEY_LEN, "pattern": "^[!-~]+$" },
                }],
                "requestBody": {
                    "required": true,
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/TaskCommand" } } },
                },
                "responses": {
                    "200": ok(json!({ "$ref": "#/components/schemas/Executed" })),
                    "400": error("The body is not JSON, or the id or the Idempotency-Key is not valid"),
                    "404": error("No such task"),
                    "409": error("The task refused the command, or a concurrent change won"),
                    "413": error("The body is over the limit"),
                    "415": error("The content type is not application/json"),
                    "422": error("The JSON is not a command, or the task refused its values"),
                },
            } },
            "/health/live": { "get": { "summary": "Liveness", "responses": { "200": { "description": "Serving" } } } },
            "/health/ready": { "get": {
                "summary": "Readiness: the store answers and every runner is running",
                "responses": { "200": { "description": "Ready" }, "503": { "description": "Not ready; the body says why" } },
            } },
            "/metrics": { "get": { "summary": "Metrics, in Prometheus' text format", "responses": { "200": { "description": "OK" } } } },
        },
        "components": { "schemas": schemas },
    })
}
