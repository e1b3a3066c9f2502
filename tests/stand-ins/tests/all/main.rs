//! The stand-ins answer what the plugins and the demo expect, record requests without
//! header values, bind loopback only, and the binary says what it is and stops when its
//! standard input closes.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};

use relo_stand_ins::{Deployment, Forge, RecordedRequest, Target};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const TOKEN: &str = "stand-in-token-7f3a";

/// Sends one HTTP/1.1 request and returns the status and the JSON body.
async fn send(
    base: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let authority = base.strip_prefix("http://").expect("http url");
    let mut stream = TcpStream::connect(authority).await.expect("connect");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(token) = auth {
        head.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .expect("status")
        .parse()
        .expect("number");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn loopback() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

#[tokio::test]
async fn the_forge_lists_creates_and_guards_tags_and_releases() {
    let forge = Forge::start(loopback(), TOKEN, ["v1.3.0"])
        .await
        .expect("forge");
    let url = forge.url().to_owned();
    assert_eq!(
        send(&url, "GET", "/api/tags", None, None).await,
        (200, json!([{"name": "v1.3.0"}]))
    );
    let tag = json!({"name": "v1.4.0"});
    assert_eq!(
        send(&url, "POST", "/api/tags", None, Some(tag.clone()))
            .await
            .0,
        401
    );
    assert_eq!(
        send(&url, "POST", "/api/tags", Some("wrong"), Some(tag.clone()))
            .await
            .0,
        401
    );
    assert_eq!(
        send(&url, "POST", "/api/tags", Some(TOKEN), Some(tag.clone())).await,
        (201, json!({"name": "v1.4.0"}))
    );
    let (status, body) = send(&url, "POST", "/api/tags", Some(TOKEN), Some(tag)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("tag v1.4.0 already exists"))
    );
    assert_eq!(forge.tags(), ["v1.3.0", "v1.4.0"]);

    let release = json!({"tag": "v1.4.0", "notes": "Release v1.4.0"});
    let (status, body) = send(
        &url,
        "POST",
        "/api/releases",
        Some(TOKEN),
        Some(release.clone()),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        body,
        json!({"id": 1, "url": format!("{url}/releases/v1.4.0"), "tag": "v1.4.0"})
    );
    assert_eq!(
        send(&url, "POST", "/api/releases", Some(TOKEN), Some(release))
            .await
            .0,
        409
    );
    let unknown = json!({"tag": "v9.9.9"});
    assert_eq!(
        send(&url, "POST", "/api/releases", Some(TOKEN), Some(unknown))
            .await
            .0,
        422
    );
    assert_eq!(forge.releases().len(), 1);
    assert_eq!(forge.releases()[0].notes, "Release v1.4.0");

    assert_eq!(
        send(
            &url,
            "POST",
            "/api/tags",
            Some(TOKEN),
            Some(json!({"nom": 1}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        send(&url, "DELETE", "/api/tags", Some(TOKEN), None).await.0,
        405
    );
    assert_eq!(send(&url, "GET", "/admin", None, None).await.0, 404);
}

#[tokio::test]
async fn requests_are_recorded_without_any_header_value() {
    let forge = Forge::start(loopback(), TOKEN, Vec::<String>::new())
        .await
        .expect("forge");
    let url = forge.url().to_owned();
    send(&url, "GET", "/api/tags?page=2", None, None).await;
    send(
        &url,
        "POST",
        "/api/tags",
        Some(TOKEN),
        Some(json!({"name": "v1.0.0"})),
    )
    .await;
    assert_eq!(
        forge.requests(),
        [
            RecordedRequest {
                service: "forge",
                method: "GET".into(),
                path: "/api/tags".into(),
                authorization: false,
                status: 200,
            },
            RecordedRequest {
                service: "forge",
                method: "POST".into(),
                path: "/api/tags".into(),
                authorization: true,
                status: 201,
            },
        ]
    );
    assert!(!format!("{:?}", forge.requests()).contains(TOKEN));
    assert_eq!(
        forge.requests()[1].to_string(),
        "forge POST /api/tags authorization=yes -> 201"
    );
}

#[tokio::test]
async fn the_target_reports_what_it_deployed_unless_told_to_lie() {
    let target = Target::start(loopback()).await.expect("target");
    let url = target.url().to_owned();
    assert_eq!(
        send(&url, "GET", "/api/deployments/current", None, None)
            .await
            .0,
        404
    );
    let digest = format!("sha256:{}", "ab".repeat(32));
    let deployment = json!({"digest": digest, "version": "1.4.0"});
    assert_eq!(
        send(&url, "POST", "/api/deployments", None, Some(deployment)).await,
        (200, json!({"digest": digest, "version": "1.4.0"}))
    );
    assert_eq!(
        target.deployed(),
        Some(Deployment {
            digest: digest.clone(),
            version: "1.4.0".into(),
            image: None
        })
    );
    assert_eq!(
        send(&url, "GET", "/api/deployments/current", None, None).await,
        (200, json!({"digest": digest, "version": "1.4.0"}))
    );
    let other = format!("sha256:{}", "cd".repeat(32));
    target.report_digest_override(Some(other.clone()));
    assert_eq!(
        send(&url, "GET", "/api/deployments/current", None, None)
            .await
            .1["digest"],
        json!(other)
    );
    target.report_digest_override(None);
    assert_eq!(
        send(&url, "GET", "/api/deployments/current", None, None)
            .await
            .1["digest"],
        json!(digest)
    );
    assert_eq!(
        send(
            &url,
            "POST",
            "/api/deployments",
            None,
            Some(json!({"digest": 1}))
        )
        .await
        .0,
        400
    );
    assert_eq!(target.requests().len(), 6);
}

#[tokio::test]
async fn only_loopback_is_ever_bound() {
    let error = Target::start("0.0.0.0:0".parse().expect("address"))
        .await
        .err()
        .expect("refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        error.to_string().contains("not a loopback address"),
        "{error}"
    );
    assert!(
        Forge::start("0.0.0.0:0".parse().expect("address"), TOKEN, ["v1"])
            .await
            .is_err()
    );
}

/// Two free loopback ports (bound, read, released).
fn free_ports() -> (u16, u16) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let b = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    (
        a.local_addr().expect("addr").port(),
        b.local_addr().expect("addr").port(),
    )
}

#[tokio::test]
async fn the_binary_says_what_it_is_logs_requests_and_stops_when_stdin_closes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token");
    let (forge_port, target_port) = free_ports();
    let mut child = Command::new(env!("CARGO_BIN_EXE_relo-stand-ins"))
        .args(["--forge", &format!("127.0.0.1:{forge_port}")])
        .args(["--target", &format!("127.0.0.1:{target_port}")])
        .arg("--token-file")
        .arg(&token_file)
        .args(["--tag", "v1.3.0", "--until-stdin-closes"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut banner = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut banner)
        .expect("banner");
    assert_eq!(
        banner.trim_end(),
        format!(
            "relo demo stand-ins (not real services): forge at http://127.0.0.1:{forge_port}, \
             deploy target at http://127.0.0.1:{target_port}"
        )
    );
    let forge = format!("http://127.0.0.1:{forge_port}");
    assert_eq!(
        send(&forge, "GET", "/api/tags", None, None).await,
        (200, json!([{"name": "v1.3.0"}]))
    );
    assert_eq!(
        send(
            &forge,
            "POST",
            "/api/tags",
            Some(TOKEN),
            Some(json!({"name": "v1.4.0"}))
        )
        .await
        .0,
        201
    );

    let mut stdin = child.stdin.take().expect("stdin");
    stdin.flush().expect("flush");
    drop(stdin);
    let output = child.wait_with_output().expect("the binary exits");
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "relo demo stand-ins (not real services): forge GET /api/tags authorization=no -> 200",
            "relo demo stand-ins (not real services): forge POST /api/tags authorization=yes -> 201",
            "relo demo stand-ins (not real services): stdin closed, stopping",
        ]
    );
    assert!(!stderr.contains(TOKEN));
}

#[test]
fn the_binary_refuses_a_missing_token_file() {
    let output = Command::new(env!("CARGO_BIN_EXE_relo-stand-ins"))
        .args(["--forge", "127.0.0.1:0", "--target", "127.0.0.1:0"])
        .args(["--token-file", "/nonexistent/relo-token"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("cannot read the token file /nonexistent/relo-token"),
        "{output:?}"
    );
}
