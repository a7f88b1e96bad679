//! Behaviour of the web dashboard through the real router (`tower::ServiceExt::oneshot`), without
//! a browser: sign-in sessions and their cookie, anti-forgery tokens on every form, department
//! scope on every page, action and export, escaping of everything endpoints send, and each page
//! against seeded data.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use chrono::{Duration, Utc};
use http_body_util::BodyExt;
use infoledger_policies::{Kind, Severity, EXAMPLE_LEDGER, EXAMPLE_POLICY};
use infoledger_server::api::{router, ApiConfig, AppState, ServerKey};
use infoledger_server::dashboard::{CookieSecurity, DashboardSettings};
use infoledger_server::store::{
    violation_id, Event, EventBody, NewAgent, NewApiToken, Role, Store, ViolationStatus,
};
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

const KEY: [u8; 32] = [5; 32];
const XSS_PATH: &str = "/home/ann/Downloads/<script>alert(1)</script>.docx";
const XSS_HOST: &str = "ws-<i>7</i>";
const FINANCE: &str = "Finance Systems";
const HR: &str = "Human Resources";
const RD: &str = "Research & Development";

struct Harness {
    app: Router,
    store: Arc<Store>,
}

/// A signed-in browser: its session cookie and the forms' anti-forgery token.
struct Browser {
    cookie: String,
    csrf: String,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }

    fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
}

/// The value of the first `name="…" value="…"` hidden field in a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// `name=value` of a `Set-Cookie` line.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

fn form(fields: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        serializer.append_pair(k, v);
    }
    serializer.finish()
}

impl Harness {
    fn new(test: &str) -> Harness {
        Harness::with(test, DashboardSettings::default())
    }

    fn with(test: &str, settings: DashboardSettings) -> Harness {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("dashboard")
            .join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Arc::new(Store::open(&dir.join("collector.db")).unwrap());
        let state = AppState::new(
            Arc::clone(&store),
            ServerKey::from_bytes(&KEY).unwrap(),
            ApiConfig::default(),
        )
        .with_dashboard(settings);
        let h = Harness {
            app: router(state),
            store,
        };
        h.seed();
        h
    }

    /// The example policy and ledger, two agents and violations in three departments and none.
    fn seed(&self) {
        let now = Utc::now();
        self.store
            .import_policy("policy.toml", EXAMPLE_POLICY, "cli", now)
            .unwrap();
        self.store
            .import_ledger("ledger.toml", EXAMPLE_LEDGER, "cli", now)
            .unwrap();
        // a3 enrolled and never delivered anything: stale.
        for (id, host) in [
            ("a1", XSS_HOST),
            ("a2", "build-2.example"),
            ("a3", "idle.example"),
        ] {
            self.store
                .add_agent(&NewAgent {
                    id: id.into(),
                    hostname: host.into(),
                    secret_hash: "hash".into(),
                    enrolled_at: now - Duration::days(3),
                })
                .unwrap();
        }
        // Agent, path, kind, severity, (asset, department).
        type SeedRow<'a> = (&'a str, &'a str, Kind, Severity, Option<(&'a str, &'a str)>);
        let seeds: [SeedRow<'_>; 6] = [
            (
                "a1",
                XSS_PATH,
                Kind::Misplaced,
                Severity::Critical,
                Some(("ACME-2026", FINANCE)),
            ),
            (
                "a1",
                "/srv/finance/acme/plan.xlsx",
                Kind::Unencrypted,
                Severity::High,
                Some(("ACME-2026", FINANCE)),
            ),
            (
                "a2",
                "/srv/finance/acme/forecast.xlsx",
                Kind::Unencrypted,
                Severity::High,
                Some(("ACME-2026", FINANCE)),
            ),
            (
                "a2",
                "/srv/hr/personnel.xlsx",
                Kind::Overexposed,
                Severity::Medium,
                Some(("HR-PERSONNEL", HR)),
            ),
            (
                "a2",
                "/srv/rd/roadmap.pptx",
                Kind::Unencrypted,
                Severity::Low,
                Some(("RD-ROADMAP", RD)),
            ),
            (
                "a1",
                "/tmp/shadow.docx",
                Kind::Unregistered,
                Severity::Medium,
                None,
            ),
        ];
        let mut seqs = std::collections::HashMap::new();
        for (i, (agent, path, kind, severity, asset)) in seeds.into_iter().enumerate() {
            let seq = seqs.entry(agent).or_insert(0u64);
            *seq += 1;
            let event = Event {
                seq: *seq,
                at: now - Duration::hours(10 - i as i64),
                body: EventBody::ViolationOpened {
                    path: path.into(),
                    kind,
                    severity,
                    label: Some("confidential".into()),
                    asset: asset.map(|(a, _)| a.to_owned()),
                    department: asset.map(|(_, d)| d.to_owned()),
                    rule: Some("rules.forbidden: **/Downloads/**".into()),
                    message: format!("{path} is {kind}"),
                    fix: "move it to <its> asset's location".into(),
                    host: if agent == "a1" {
                        XSS_HOST
                    } else {
                        "build-2.example"
                    }
                    .into(),
                },
            };
            self.store.ingest(agent, &[event]).unwrap();
        }
    }

    fn token(&self, name: &str, role: Role, departments: &[&str]) -> String {
        let departments: Vec<String> = departments.iter().map(|d| (*d).to_owned()).collect();
        self.store
            .create_api_token(
                &NewApiToken {
                    name,
                    role,
                    departments: &departments,
                    expires_at: None,
                },
                "cli",
                Utc::now(),
            )
            .unwrap()
            .token
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn get(&self, path: &str, browser: Option<&Browser>) -> Answer {
        let mut request = Request::get(path).header("accept", "text/html");
        if let Some(b) = browser {
            request = request.header("cookie", &b.cookie);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Answer {
        let mut request =
            Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            request = request.header("cookie", c);
        }
        self.send(request.body(Body::from(form(fields))).unwrap())
            .await
    }

    /// Posts a form as `browser`, with its anti-forgery token.
    async fn submit(&self, path: &str, browser: &Browser, fields: &[(&str, &str)]) -> Answer {
        let mut all = vec![("csrf", browser.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, Some(&browser.cookie), &all).await
    }

    /// Signs in through the form, like a browser: the form's cookie and token, then the session.
    async fn sign_in(&self, token: &str) -> Browser {
        let form_page = self.get("/login", None).await;
        assert_eq!(form_page.status, StatusCode::OK);
        let login_cookie = cookie_pair(&form_page.cookies()[0]);
        let nonce = hidden(&form_page.body, "csrf");
        let answer = self
            .post(
                "/login",
                Some(&login_cookie),
                &[("csrf", &nonce), ("token", token), ("next", "/")],
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let session = answer
            .cookies()
            .into_iter()
            .find(|c| c.starts_with("infoledger_session="))
            .unwrap();
        let cookie = cookie_pair(&session);
        let home = self
            .send(
                Request::get("/")
                    .header("cookie", &cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.body);
        Browser {
            csrf: hidden(&home.body, "csrf"),
            cookie,
        }
    }

    fn status_of(&self, path: &str, kind: Kind, agent: &str) -> ViolationStatus {
        self.store
            .violation(&violation_id(agent, path, kind), None)
            .unwrap()
            .unwrap()
            .violation
            .status
    }
}

fn hr_id() -> String {
    violation_id("a2", "/srv/hr/personnel.xlsx", Kind::Overexposed)
}

fn finance_id() -> String {
    violation_id("a1", "/srv/finance/acme/plan.xlsx", Kind::Unencrypted)
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_session_that_signing_out_ends() {
    let h = Harness::new("sign_in");
    let token = h.token("alice", Role::Admin, &[]);
    let form_page = h.get("/login?next=%2Fledger", None).await;
    let login_cookie = form_page.cookies()[0].clone();
    assert!(
        login_cookie.contains("HttpOnly") && login_cookie.contains("SameSite=Strict"),
        "{login_cookie}"
    );
    assert_eq!(hidden(&form_page.body, "next"), "/ledger");
    let nonce = hidden(&form_page.body, "csrf");
    let pair = cookie_pair(&login_cookie);

    // A wrong token: the form again, with the reason, and no session.
    let refused = h
        .post(
            "/login",
            Some(&pair),
            &[("csrf", &nonce), ("token", "ilt_wrong")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("unknown, expired or revoked"));
    assert!(refused
        .cookies()
        .iter()
        .all(|c| !c.starts_with("infoledger_session=")));

    let answer = h
        .post(
            "/login",
            Some(&pair),
            &[("csrf", &nonce), ("token", &token), ("next", "/ledger")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/ledger");
    let session = answer
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("infoledger_session="))
        .unwrap();
    assert!(session.contains("; HttpOnly"), "{session}");
    assert!(session.contains("; SameSite=Strict"), "{session}");
    assert!(session.contains("; Path=/"), "{session}");
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
    let browser = Browser {
        cookie: cookie_pair(&session),
        csrf: String::new(),
    };
    let home = h.get("/", Some(&browser)).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.body.contains("alice · admin · all departments"),
        "{}",
        home.body
    );
    let browser = Browser {
        csrf: hidden(&home.body, "csrf"),
        ..browser
    };

    let out = h.submit("/logout", &browser, &[]).await;
    assert_eq!(
        (out.status, out.location()),
        (StatusCode::SEE_OTHER, "/login")
    );
    assert!(out.cookies()[0].contains("Max-Age=0"));
    let after = h.get("/", Some(&browser)).await;
    assert_eq!(
        (after.status, after.location()),
        (StatusCode::SEE_OTHER, "/login?next=%2F")
    );
    let actions: Vec<String> = h
        .store
        .audit_entries(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("session."))
        .collect();
    assert_eq!(actions, ["session.signed_in", "session.signed_out"]);
}

#[tokio::test]
async fn the_session_cookie_is_secure_over_https() {
    let h = Harness::new("secure_cookie");
    let token = h.token("alice", Role::Admin, &[]);
    let form_page = h.get("/login", None).await;
    let nonce = hidden(&form_page.body, "csrf");
    let request = Request::post("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie_pair(&form_page.cookies()[0]))
        .header("x-forwarded-proto", "https")
        .body(Body::from(form(&[("csrf", &nonce), ("token", &token)])))
        .unwrap();
    let answer = h.send(request).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert!(
        answer.cookies()[0].ends_with("; Secure"),
        "{:?}",
        answer.cookies()
    );

    let always = Harness::with(
        "secure_always",
        DashboardSettings {
            secure_cookie: CookieSecurity::Always,
            ..DashboardSettings::default()
        },
    );
    let form_page = always.get("/login", None).await;
    assert!(form_page.cookies()[0].ends_with("; Secure"));
}

#[tokio::test]
async fn pages_and_forms_without_a_session_lead_to_the_sign_in_page() {
    let h = Harness::new("no_session");
    for (path, next) in [
        ("/", "%2F"),
        (
            "/violations?status=open&q=a%26b",
            "%2Fviolations%3Fstatus%3Dopen%26q%3Da%2526b",
        ),
        ("/ledger/ACME-2026", "%2Fledger%2FACME-2026"),
        ("/violations.csv", "%2Fviolations.csv"),
    ] {
        let answer = h.get(path, None).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(answer.location(), format!("/login?next={next}"), "{path}");
    }
    let stale = Browser {
        cookie: "infoledger_session=not-a-session".into(),
        csrf: String::new(),
    };
    assert_eq!(
        h.get("/agents", Some(&stale)).await.status,
        StatusCode::SEE_OTHER
    );
    let post = h
        .post(&format!("/violations/{}/acknowledge", hr_id()), None, &[])
        .await;
    assert_eq!(
        (post.status, post.location()),
        (StatusCode::SEE_OTHER, "/login?next=%2F")
    );
    assert_eq!(
        h.status_of("/srv/hr/personnel.xlsx", Kind::Overexposed, "a2"),
        ViolationStatus::Open
    );
}

#[tokio::test]
async fn forms_without_the_anti_forgery_token_are_refused_and_change_nothing() {
    let h = Harness::new("csrf");
    let browser = h.sign_in(&h.token("mia", Role::Manager, &[HR])).await;
    let path = format!("/violations/{}/acknowledge", hr_id());
    for fields in [
        vec![("reason", "seen")],
        vec![("csrf", ""), ("reason", "seen")],
        vec![
            ("csrf", "forged-token-of-the-right-length-forged-tok"),
            ("reason", "seen"),
        ],
    ] {
        let answer = h.post(&path, Some(&browser.cookie), &fields).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{fields:?}");
        assert!(
            answer.body.contains("anti-forgery token"),
            "{}",
            answer.body
        );
        assert!(answer
            .body
            .contains("<code id=\"error-code\">forbidden</code>"));
    }
    let bulk = h
        .post(
            "/violations/acknowledge",
            Some(&browser.cookie),
            &[("id", &hr_id())],
        )
        .await;
    assert_eq!(bulk.status, StatusCode::FORBIDDEN);
    let logout = h.post("/logout", Some(&browser.cookie), &[]).await;
    assert_eq!(logout.status, StatusCode::FORBIDDEN);
    assert_eq!(
        h.status_of("/srv/hr/personnel.xlsx", Kind::Overexposed, "a2"),
        ViolationStatus::Open
    );
    // The session survived the forged sign-out; with the token the same form works.
    let done = h.submit(&path, &browser, &[("reason", "seen")]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(
        h.status_of("/srv/hr/personnel.xlsx", Kind::Overexposed, "a2"),
        ViolationStatus::Acknowledged
    );

    // The sign-in form has its own token, tied to its cookie.
    let token = h.token("ann", Role::Admin, &[]);
    let login = h.post("/login", None, &[("token", &token)]).await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);
    let form_page = h.get("/login", None).await;
    let other_nonce = "x".repeat(43);
    let login = h
        .post(
            "/login",
            Some(&cookie_pair(&form_page.cookies()[0])),
            &[("csrf", &other_nonce), ("token", &token)],
        )
        .await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_department_manager_sees_and_decides_only_within_the_department() {
    let h = Harness::new("scope");
    let browser = h.sign_in(&h.token("mia", Role::Manager, &[HR])).await;

    // Another department's violation is the same page as one that does not exist.
    let other = h
        .get(&format!("/violations/{}", finance_id()), Some(&browser))
        .await;
    let missing = h
        .get(&format!("/violations/{}", "0".repeat(64)), Some(&browser))
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(other.body, missing.body);
    assert!(!other.body.contains("plan.xlsx"));
    for action in ["acknowledge", "comment", "exception", "reopen"] {
        let answer = h
            .submit(
                &format!("/violations/{}/{action}", finance_id()),
                &browser,
                &[("reason", "x"), ("text", "x"), ("until", "2099-01-01")],
            )
            .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{action}");
        assert!(!answer.body.contains("plan.xlsx"), "{action}");
    }
    let bulk = h
        .submit(
            "/violations/acknowledge",
            &browser,
            &[("id", &finance_id()), ("back", "")],
        )
        .await;
    assert_eq!(bulk.status, StatusCode::SEE_OTHER);
    assert!(
        bulk.location().ends_with("acknowledged=0&skipped=1"),
        "{}",
        bulk.location()
    );
    assert_eq!(
        h.status_of("/srv/finance/acme/plan.xlsx", Kind::Unencrypted, "a1"),
        ViolationStatus::Open
    );
    assert_eq!(
        h.get("/ledger/ACME-2026", Some(&browser)).await.status,
        StatusCode::NOT_FOUND
    );

    // Lists, figures and exports hold the department's rows only, whatever the filter asks.
    for path in [
        "/",
        "/violations?filtered=1",
        "/violations?filtered=1&department=Finance+Systems",
        "/violations.csv?filtered=1",
        "/violations.csv?department=Finance+Systems",
        "/ledger",
        "/ledger.csv",
        "/maturity",
        "/maturity.csv",
    ] {
        let answer = h.get(path, Some(&browser)).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        for leak in [
            "plan.xlsx",
            "forecast.xlsx",
            "roadmap.pptx",
            "shadow.docx",
            "ACME-2026",
            "RD-ROADMAP",
        ] {
            assert!(!answer.body.contains(leak), "{path} shows {leak}");
        }
    }
    let queue = h.get("/violations?filtered=1", Some(&browser)).await;
    assert!(queue.body.contains("/srv/hr/personnel.xlsx"));
    let csv = h.get("/violations.csv?filtered=1", Some(&browser)).await;
    assert_eq!(csv.body.lines().count(), 2, "{}", csv.body);
    assert!(h
        .get("/ledger.csv", Some(&browser))
        .await
        .body
        .contains("HR-PERSONNEL"));

    // The audit trail is not departmental: scoped managers may not read it.
    let audit = h.get("/audit", Some(&browser)).await;
    assert_eq!(audit.status, StatusCode::FORBIDDEN);
    assert!(!h
        .get("/", Some(&browser))
        .await
        .body
        .contains("href=\"/audit\""));
    assert_eq!(
        h.get("/audit.csv", Some(&browser)).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn strings_from_endpoints_are_escaped_and_no_script_may_run() {
    let h = Harness::new("escape");
    let browser = h.sign_in(&h.token("alice", Role::Admin, &[])).await;
    let id = violation_id("a1", XSS_PATH, Kind::Misplaced);
    let pages = [
        h.get("/violations", Some(&browser)).await,
        h.get(&format!("/violations/{id}"), Some(&browser)).await,
        h.get("/violations?q=%3Cscript%3E", Some(&browser)).await,
        h.get("/agents", Some(&browser)).await,
        h.get("/maturity", Some(&browser)).await,
        h.get("/ledger", Some(&browser)).await,
    ];
    for page in &pages {
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains("<script"), "{}", page.body);
        assert!(!page.body.contains("<i>7</i>"));
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert_eq!(page.headers["x-frame-options"], "DENY");
        assert_eq!(page.headers["cache-control"], "no-store");
    }
    assert!(pages[0]
        .body
        .contains("&#60;script&#62;alert(1)&#60;/script&#62;.docx"));
    assert!(pages[0].body.contains("ws-&#60;i&#62;7&#60;/i&#62;"));
    assert!(pages[1]
        .body
        .contains("move it to &#60;its&#62; asset&#39;s location"));
    // The text filter is shown back in its field, escaped, and finds the file.
    assert!(pages[2].body.contains("value=\"&#60;script&#62;\""));
    assert!(pages[2].body.contains(&format!("data-id=\"{id}\"")));
    // A department with `&` appears escaped in the heatmap and its link.
    let home = h.get("/", Some(&browser)).await;
    assert!(home.body.contains("Research &#38; Development"));
    assert!(home.body.contains("department=Research+%26+Development"));
}

/// The number in the heatmap cell of `department` × `severity`.
fn heat_cell(html: &str, department: &str, severity: &str) -> String {
    let marker = format!("data-department=\"{department}\" data-severity=\"{severity}\">");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no cell {marker}"))
        + marker.len();
    let cell = &html[start..html[start..].find("</td>").unwrap() + start];
    cell.split('>')
        .find_map(|part| {
            let text = part.split('<').next()?;
            (!text.is_empty()).then(|| text.to_owned())
        })
        .unwrap()
}

#[tokio::test]
async fn every_page_shows_the_seeded_data() {
    let h = Harness::new("pages");
    let browser = h.sign_in(&h.token("alice", Role::Admin, &[])).await;
    let home = h.get("/?days=90", Some(&browser)).await;
    assert_eq!(home.status, StatusCode::OK);
    assert_eq!(heat_cell(&home.body, "Finance Systems", "high"), "2");
    assert_eq!(heat_cell(&home.body, "Finance Systems", "critical"), "1");
    assert_eq!(
        heat_cell(&home.body, "Research &#38; Development", "low"),
        "1"
    );
    assert_eq!(heat_cell(&home.body, "(no asset)", "medium"), "1");
    assert_eq!(heat_cell(&home.body, "Human Resources", "critical"), "0");
    assert!(home.body.contains("<strong>90 days</strong>"));
    assert!(
        home.body.contains("data-severity=\"high\">high 2</span>"),
        "{}",
        home.body
    );
    assert!(home
        .body
        .contains("<a href=\"/ledger/ACME-2026\">ACME-2026</a>"));
    assert_eq!(
        h.get("/?days=7", Some(&browser)).await.status,
        StatusCode::BAD_REQUEST
    );

    let queue = h
        .get("/violations?severity=high&sort=severity", Some(&browser))
        .await;
    assert_eq!(
        queue.body.matches("<tr data-id=").count(),
        2,
        "{}",
        queue.body
    );
    assert!(queue.body.contains("<option value=\"severity\" selected>"));
    let bad = h.get("/violations?kind=lost", Some(&browser)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("invalid `kind`"), "{}", bad.body);
    // Pages of one row: the cursor walks all five open violations.
    let mut next = "/violations?limit=1".to_owned();
    let mut seen = Vec::new();
    while !next.is_empty() {
        let page = h.get(&next, Some(&browser)).await;
        assert_eq!(page.status, StatusCode::OK, "{next}");
        seen.push(hidden_attr(&page.body, "data-id"));
        next = link_with_id(&page.body, "next-page").unwrap_or_default();
        assert!(seen.len() <= 6, "{seen:?}");
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 6);

    let detail = h
        .get(&format!("/violations/{}", finance_id()), Some(&browser))
        .await;
    assert!(
        detail
            .body
            .contains("<dd id=\"administrator\">alice@example.com</dd>"),
        "{}",
        detail.body
    );
    assert!(detail
        .body
        .contains("<code>rules.forbidden: **/Downloads/**</code>"));

    let ledger = h.get("/ledger", Some(&browser)).await;
    assert!(ledger.body.contains("data-asset=\"GLOBEX-2025\""));
    let asset = h.get("/ledger/ACME-2026", Some(&browser)).await;
    assert_eq!(asset.status, StatusCode::OK);
    assert!(asset.body.contains("/srv/finance/acme/plan.xlsx"));
    assert_eq!(
        h.get("/ledger/NOPE", Some(&browser)).await.status,
        StatusCode::NOT_FOUND
    );

    let agents = h.get("/agents", Some(&browser)).await;
    assert_eq!(agents.body.matches("class=\"state-stale\"").count(), 1);
    assert_eq!(agents.body.matches("class=\"state-ok\"").count(), 2);
    assert!(agents.body.contains("title=\"agent a3, enrolled"));
    let csv = h.get("/agents.csv", Some(&browser)).await;
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    assert!(
        csv.body.starts_with("id,hostname,version,state"),
        "{}",
        csv.body
    );

    let maturity = h.get("/maturity", Some(&browser)).await;
    assert!(maturity
        .body
        .contains("data-department=\"Finance Systems\""));
    let audit = h.get("/audit?verify=1", Some(&browser)).await;
    assert!(
        audit.body.contains("The audit trail is intact"),
        "{}",
        audit.body
    );
    let audit_csv = h.get("/audit.csv", Some(&browser)).await;
    assert!(audit_csv.body.contains("bundle.ledger_changed"));
    let export = h.get("/violations.csv?filtered=1", Some(&browser)).await;
    assert_eq!(export.body.lines().count(), 7);
    assert!(export.body.contains("<script>alert(1)</script>.docx"));

    let css = h.get("/static/dashboard.css", None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
}

/// The target of the link `<a href="…" id="{id}">`, unescaped.
fn link_with_id(html: &str, id: &str) -> Option<String> {
    let before = html.split(&format!("\" id=\"{id}\"")).next()?;
    if before.len() == html.len() {
        return None;
    }
    Some(before.rsplit("href=\"").next()?.replace("&#38;", "&"))
}

/// The value of the first `name="…"` attribute in a page.
fn hidden_attr(html: &str, name: &str) -> String {
    let marker = format!("{name}=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn decisions_taken_through_the_forms_show_in_the_timeline() {
    let h = Harness::new("decisions");
    let browser = h.sign_in(&h.token("mia", Role::Manager, &[FINANCE])).await;
    let id = finance_id();
    let base = format!("/violations/{id}");

    let ack = h
        .submit(
            &format!("{base}/acknowledge"),
            &browser,
            &[("reason", "owner informed")],
        )
        .await;
    assert_eq!(
        (ack.status, ack.location()),
        (StatusCode::SEE_OTHER, format!("{base}#timeline").as_str())
    );
    let again = h
        .submit(&format!("{base}/acknowledge"), &browser, &[])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("id=\"action-error\""), "{}", again.body);

    let bad_date = h
        .submit(
            &format!("{base}/exception"),
            &browser,
            &[("until", "next week"), ("reason", "r")],
        )
        .await;
    assert_eq!(bad_date.status, StatusCode::BAD_REQUEST);
    assert!(bad_date.body.contains("invalid `until`"));
    let no_reason = h
        .submit(
            &format!("{base}/exception"),
            &browser,
            &[("until", "2099-06-30"), ("reason", " ")],
        )
        .await;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST);
    let past = h
        .submit(
            &format!("{base}/exception"),
            &browser,
            &[("until", "2001-01-01"), ("reason", "r")],
        )
        .await;
    assert_eq!(past.status, StatusCode::BAD_REQUEST);

    let except = h
        .submit(
            &format!("{base}/exception"),
            &browser,
            &[("until", "2099-06-30"), ("reason", "archive migration")],
        )
        .await;
    assert_eq!(except.status, StatusCode::SEE_OTHER);
    let page = h.get(&base, Some(&browser)).await;
    assert!(page
        .body
        .contains("<strong id=\"status\">excepted</strong>"));
    assert!(page
        .body
        .contains("<span id=\"excepted-until\">2099-07-01 00:00 UTC</span>"));
    let comment = h
        .submit(
            &format!("{base}/comment"),
            &browser,
            &[("text", "checked <b>again</b>")],
        )
        .await;
    assert_eq!(comment.status, StatusCode::SEE_OTHER);
    let reopen = h
        .submit(
            &format!("{base}/reopen"),
            &browser,
            &[("reason", "migration cancelled")],
        )
        .await;
    assert_eq!(reopen.status, StatusCode::SEE_OTHER);
    let unknown = h.submit(&format!("{base}/delete"), &browser, &[]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let page = h.get(&base, Some(&browser)).await;
    let actions: Vec<&str> = page
        .body
        .split("<strong class=\"action\">")
        .skip(1)
        .map(|part| part.split('<').next().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "opened",
            "acknowledged",
            "excepted",
            "commented",
            "reopened"
        ]
    );
    for text in [
        "owner informed",
        "archive migration",
        "checked &#60;b&#62;again&#60;/b&#62;",
        "migration cancelled",
    ] {
        assert!(page.body.contains(text), "{text}");
    }
    assert_eq!(
        page.body
            .matches("<span class=\"actor\">mia</span>")
            .count(),
        4
    );

    // A viewer reads but may not decide.
    let viewer = h.sign_in(&h.token("vic", Role::Viewer, &[])).await;
    let page = h.get(&base, Some(&viewer)).await;
    assert!(!page.body.contains("id=\"comment-form\""));
    let refused = h
        .submit(&format!("{base}/comment"), &viewer, &[("text", "x")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bulk_acknowledgement_takes_the_selected_open_violations() {
    let h = Harness::new("bulk");
    let browser = h.sign_in(&h.token("mia", Role::Manager, &[FINANCE])).await;
    let plan = finance_id();
    let forecast = violation_id("a2", "/srv/finance/acme/forecast.xlsx", Kind::Unencrypted);
    let answer = h
        .submit(
            "/violations/acknowledge",
            &browser,
            &[
                ("id", &plan),
                ("id", &forecast),
                ("id", &hr_id()),
                ("reason", "triaged"),
                (
                    "back",
                    "filtered=1&status=open&severity=high&cursor=x&evil=1",
                ),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        answer.location(),
        "/violations?filtered=1&status=open&severity=high&sort=opened_at&order=desc\
         &acknowledged=2&skipped=1"
    );
    let queue = h.get(answer.location(), Some(&browser)).await;
    assert!(
        queue.body.contains("2 acknowledged; 1 skipped"),
        "{}",
        queue.body
    );
    assert!(queue.body.contains("id=\"empty\""));
    for path in [
        "/srv/finance/acme/plan.xlsx",
        "/srv/finance/acme/forecast.xlsx",
    ] {
        let agent = if path.contains("plan") { "a1" } else { "a2" };
        assert_eq!(
            h.status_of(path, Kind::Unencrypted, agent),
            ViolationStatus::Acknowledged
        );
    }
    assert_eq!(
        h.status_of("/srv/hr/personnel.xlsx", Kind::Overexposed, "a2"),
        ViolationStatus::Open
    );
}

#[tokio::test]
async fn unknown_addresses_answer_html_to_browsers_and_json_to_the_api() {
    let h = Harness::new("fallback");
    let page = h.get("/nowhere", None).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page
        .body
        .contains("<code id=\"error-code\">not_found</code>"));
    let api = h.get("/api/v1/nowhere", None).await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert!(api.body.contains("\"code\":\"not_found\""));
}
