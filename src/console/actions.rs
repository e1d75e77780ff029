//! `/console/actions…`: Logto's Actions (`action.postFirstFactorVerification`,
//! `action.postSignIn`): each one's script, environment variables, sample event and policy,
//! saved through the API's own `put_action`, and the dry run (`dry_run`) of what is typed,
//! with its result and console output. The API's checks apply to both.

use super::{
    html, refuse_forgery, see_other, store_failed, views, ConsoleForm, CsrfForm, SignedIn,
};
use crate::domain::action::ActionType;
use crate::routes::AppState;
use crate::storage::Page;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

/// The routes this file serves.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/actions", get(actions_page))
        .route(
            "/console/actions/{type}",
            get(action_page).post(save_or_test),
        )
        .route(
            "/console/actions/{type}/delete",
            get(delete_page).post(delete_action),
        )
}

/// The runs an action's page lists, newest first.
const RUNS_SHOWN: u32 = 20;

/// The 404 page for a path that names no action type.
fn no_such_type() -> Response {
    html(
        StatusCode::NOT_FOUND,
        views::problem("There is no such action type."),
    )
}

/// Both action types, with their stored action if set.
async fn actions_page(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    let mut actions = Vec::new();
    for t in ActionType::ALL {
        match crate::identity::actions::load(&*state.store, t).await {
            Ok(a) => actions.push((t, a)),
            Err(e) => return store_failed(e),
        }
    }
    html(StatusCode::OK, views::actions(&signed_in.session, &actions))
}

#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: Option<String>,
}

async fn action_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(name): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let Some(t) = ActionType::parse(&name) else {
        return no_such_type();
    };
    let notice = (done.done.as_deref() == Some("saved")).then_some("Saved.");
    show_action(&state, &signed_in, t, None, StatusCode::OK, notice, None).await
}

/// What the action page shows besides the form.
#[derive(Default)]
struct Outcome<'a> {
    notice: Option<&'a str>,
    error: Option<&'a str>,
    /// A dry run's answer (`{result | error, logs, durationMs}`).
    dry_run: Option<serde_json::Value>,
}

/// The action page: `form` is what was typed (shown again), else the stored action (or a
/// starter script for a type without one).
async fn show_action(
    state: &AppState,
    signed_in: &SignedIn,
    t: ActionType,
    form: Option<&views::ActionForm>,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    render(
        state,
        signed_in,
        t,
        form,
        status,
        Outcome {
            notice,
            error,
            dry_run: None,
        },
    )
    .await
}

async fn render(
    state: &AppState,
    signed_in: &SignedIn,
    t: ActionType,
    form: Option<&views::ActionForm>,
    status: StatusCode,
    outcome: Outcome<'_>,
) -> Response {
    let stored = match crate::identity::actions::load(&*state.store, t).await {
        Ok(a) => a,
        Err(e) => return store_failed(e),
    };
    let runs = match state
        .store
        .action_runs(
            t.name(),
            Page {
                limit: RUNS_SHOWN,
                offset: 0,
            },
        )
        .await
    {
        Ok((runs, _)) => runs,
        Err(e) => return store_failed(e),
    };
    let shown = views::ActionForm::of(t, stored.as_ref());
    html(
        status,
        views::action(
            &signed_in.session,
            &views::ActionPage {
                action_type: t,
                exists: stored.is_some(),
                form: form.unwrap_or(&shown),
                runs: &runs,
                notice: outcome.notice,
                error: outcome.error,
                dry_run: outcome.dry_run.as_ref(),
            },
        ),
    )
}

/// The action form's two buttons: `intent=save` sets the action (as `PUT
/// /api/configs/actions/:actionType`, 303 back); `intent=test` runs what is typed once with
/// the sample event (as `POST /api/configs/actions/test`) and shows what it did, saving
/// nothing.
async fn save_or_test(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(name): Path<String>,
    parts: Parts,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Response {
    let Some(t) = ActionType::parse(&name) else {
        return no_such_type();
    };
    let form = views::ActionForm::from_pairs(&pairs);
    if let Some(refused) = refuse_forgery(&parts, &signed_in, &form.csrf) {
        return refused;
    }
    let refuse = |status: StatusCode, message: String| {
        let (state, signed_in, form) = (&state, &signed_in, &form);
        async move {
            show_action(
                state,
                signed_in,
                t,
                Some(form),
                status,
                None,
                Some(&message),
            )
            .await
        }
    };
    match form.intent.as_str() {
        "save" => {
            let body = match form.to_put_body() {
                Ok(b) => b,
                Err(m) => return refuse(StatusCode::BAD_REQUEST, m).await,
            };
            match crate::routes::actions::put_action(&state, t, body).await {
                Ok(_) => see_other(&format!("/console/actions/{}?done=saved", t.name())),
                Err(e) => refuse(e.status, e.message).await,
            }
        }
        "test" => {
            let body = match form.to_test_body(t) {
                Ok(b) => b,
                Err(m) => return refuse(StatusCode::BAD_REQUEST, m).await,
            };
            match crate::routes::actions::dry_run(&state, body).await {
                Ok(answer) => {
                    let outcome = Outcome {
                        dry_run: Some(answer),
                        ..Default::default()
                    };
                    render(&state, &signed_in, t, Some(&form), StatusCode::OK, outcome).await
                }
                Err(e) => refuse(e.status, e.message).await,
            }
        }
        _ => refuse(StatusCode::BAD_REQUEST, "Choose Save or Run test.".into()).await,
    }
}

async fn delete_page(signed_in: SignedIn, Path(name): Path<String>) -> Response {
    match ActionType::parse(&name) {
        Some(t) => html(StatusCode::OK, views::delete_action(&signed_in.session, t)),
        None => no_such_type(),
    }
}

/// Deletes the action (as `DELETE /api/configs/actions/:actionType`): sign-ins go on without
/// it.
async fn delete_action(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(name): Path<String>,
    parts: Parts,
    ConsoleForm(form): ConsoleForm<CsrfForm>,
) -> Response {
    let Some(t) = ActionType::parse(&name) else {
        return no_such_type();
    };
    if let Some(refused) = refuse_forgery(&parts, &signed_in, &form.csrf) {
        return refused;
    }
    match state.store.delete_action(t.name()).await {
        Ok(_) => {
            tracing::info!(action_type = t.name(), "action deleted from the console");
            see_other("/console/actions")
        }
        Err(e) => store_failed(e),
    }
}
