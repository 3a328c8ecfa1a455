//! `docs/protocol.md#legacy-api`: the original `/main/…` API.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

async fn call(app: &TestApp, method: Method, path: &str, key: Option<&str>) -> (u16, Value) {
    let response = app.api().request(method, path, key).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn assert_failure(status: u16, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["status"], "failure", "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[tokio::test]
async fn every_legacy_route_takes_get_and_post_with_or_without_slash() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    let mut n = 0;
    for method in [Method::GET, Method::POST] {
        for slash in ["/", ""] {
            n += 1;
            let room = format!("room{n}");
            let (status, body) =
                call(&app, method.clone(), &format!("/main/create_room/{room}{slash}"), Some(&key)).await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["status"], "success");
            assert_eq!(body["room"]["name"], room.as_str());
            assert!(body["message"].is_string());

            let (status, body) =
                call(&app, method.clone(), &format!("/main/add_endpoint/{room}/read_and_write{slash}"), Some(&key))
                    .await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["status"], "success");
            let code = body["code"].as_str().unwrap().to_owned();
            assert_eq!(body["endpoint"]["code"], code.as_str());
            assert_eq!(body["endpoint"]["permission"], "read_and_write");

            let (status, body) =
                call(&app, method.clone(), &format!("/main/list_endpoints/{room}{slash}"), Some(&key)).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["endpoints"][0]["code"], code.as_str());

            let (status, body) = call(&app, method.clone(), &format!("/main/list_rooms{slash}"), Some(&key)).await;
            assert_eq!(status, 200, "{body}");
            assert!(body["rooms"].as_array().unwrap().iter().any(|r| r["name"] == room.as_str()));

            let path = format!("/main/delete_endpoint/{room}/{code}{slash}");
            let (status, body) = call(&app, method.clone(), &path, Some(&key)).await;
            assert_eq!((status, body["status"].as_str()), (200, Some("success")), "{body}");
            let (status, body) = call(&app, method.clone(), &path, Some(&key)).await;
            assert_failure(status, &body, 404, "not_found");

            let path = format!("/main/delete_room/{room}{slash}");
            let (status, body) = call(&app, method.clone(), &path, Some(&key)).await;
            assert_eq!((status, body["status"].as_str()), (200, Some("success")), "{body}");
            let (status, body) = call(&app, method.clone(), &path, Some(&key)).await;
            assert_failure(status, &body, 404, "not_found");
        }
    }
}

#[tokio::test]
async fn legacy_failures_carry_the_envelope_and_the_error() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    let (status, body) = call(&app, Method::GET, "/main/list_rooms/", None).await;
    assert_failure(status, &body, 403, "forbidden");
    let (status, body) = call(&app, Method::GET, "/main/create_room/lobby/", Some("wrong")).await;
    assert_failure(status, &body, 403, "forbidden");
    let (status, body) = call(&app, Method::GET, "/main/create_room/bad%20name/", Some(&key)).await;
    assert_failure(status, &body, 400, "invalid");
    call(&app, Method::GET, "/main/create_room/lobby/", Some(&key)).await;
    let (status, body) = call(&app, Method::POST, "/main/create_room/lobby/", Some(&key)).await;
    assert_failure(status, &body, 409, "conflict");
    let (status, body) = call(&app, Method::GET, "/main/add_endpoint/lobby/write/", Some(&key)).await;
    assert_failure(status, &body, 400, "invalid");
    let (status, body) = call(&app, Method::GET, "/main/add_endpoint/nowhere/read/", Some(&key)).await;
    assert_failure(status, &body, 404, "not_found");
    let (status, body) = call(&app, Method::GET, "/main/list_endpoints/nowhere/", Some(&key)).await;
    assert_failure(status, &body, 404, "not_found");
    let (status, body) = call(&app, Method::GET, "/main/add_endpoint/lobby/", None).await;
    assert_failure(status, &body, 403, "forbidden");
    let (status, body) = call(&app, Method::PUT, "/main/no_such_call/", Some(&key)).await;
    assert_failure(status, &body, 404, "not_found");
}

#[tokio::test]
async fn legacy_meta_comes_from_the_body_or_the_query() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    app.api().create_room(&key, "lobby").await;

    let response = app
        .api()
        .request(Method::POST, "/main/add_endpoint/lobby/read/", Some(&key))
        .json(&json!({ "meta": { "name": "Ann" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["endpoint"]["meta"], json!({ "name": "Ann" }));
    assert_eq!(body["endpoint"]["permission"], "read");

    let path = "/main/add_endpoint/lobby/read_and_write/?meta=%7B%22name%22%3A%22Bob%22%7D";
    let (status, body) = call(&app, Method::GET, path, Some(&key)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["endpoint"]["meta"], json!({ "name": "Bob" }));
    let form = app.api().request(Method::POST, path, Some(&key)).body("a=1&b=2").send().await.unwrap();
    let (status, body): (u16, Value) = (form.status().as_u16(), form.json().await.unwrap());
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["endpoint"]["meta"], json!({ "name": "Bob" }));

    for bad in ["?meta=not-json", "?meta=%5B1%5D", "?meta=%22text%22"] {
        let (status, body) = call(&app, Method::GET, &format!("/main/add_endpoint/lobby/read/{bad}"), Some(&key)).await;
        assert_failure(status, &body, 400, "invalid");
    }
    let response = app
        .api()
        .request(Method::POST, "/main/add_endpoint/lobby/read/", Some(&key))
        .body("{broken")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_failure(status, &response.json().await.unwrap(), 400, "invalid");
}

#[tokio::test]
async fn legacy_rooms_and_endpoints_show_the_new_fields() {
    let app = spawn_app().await;
    let key = app.create_app("acme").await;
    let (status, body) = call(&app, Method::GET, "/main/create_room/lobby/", Some(&key)).await;
    assert_eq!((status, &body["room"]["presence"]), (201, &json!(false)), "{body}");
    let (status, body) = call(&app, Method::GET, "/main/add_endpoint/lobby/read/", Some(&key)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!((&body["endpoint"]["max_connections"], &body["endpoint"]["single_use"]), (&Value::Null, &json!(false)));
    let (_, body) = call(&app, Method::GET, "/main/list_endpoints/lobby/", Some(&key)).await;
    assert_eq!(body["endpoints"][0]["single_use"], false, "{body}");
}
