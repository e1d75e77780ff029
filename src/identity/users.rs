//! Users: create, change, delete (each with its event), and their roles (no event: Logto fires
//! none for role assignments).

use super::{answer, doc, load, must_be_free, must_exist, to_json, Emitter};
use crate::domain::event::HookEvent;
use crate::domain::identity::authz::{Role, RoleType};
use crate::domain::identity::user::{email_key, ApiUser, User, UserChange};
use crate::storage::identity::{
    transact, IdentityError, IdentityResult, IdentityStore, IdentityTx, Key, Kind, Link,
};
use crate::storage::StoreError;
use serde_json::{json, Value};

/// The stored document of a user: the Management API's answer ([`ApiUser`]: the user-info
/// fields and `hasPassword`), so reads answer it as stored.
pub(crate) fn user_doc(
    user: &User,
    has_password: bool,
) -> IdentityResult<crate::storage::identity::Doc> {
    doc(
        &user.id,
        &ApiUser { user, has_password },
        vec![
            (Key::Username, user.username.clone()),
            (Key::Email, user.primary_email.as_deref().map(email_key)),
            (Key::Phone, user.primary_phone.clone()),
        ],
        None,
        user.created_at,
    )
}

/// The user `id` and whether it has a password, or a 404.
pub(crate) fn load_user(tx: &mut dyn IdentityTx, id: &str) -> IdentityResult<(User, bool)> {
    let v = tx
        .get(Kind::User, id)?
        .ok_or_else(|| IdentityError::not_found(Kind::User, id))?;
    let has_password = v
        .get("hasPassword")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let user = serde_json::from_value(v)
        .map_err(|e| IdentityError::Store(StoreError::Corrupt(format!("a stored user: {e}"))))?;
    Ok((user, has_password))
}

/// Usernames, emails (regardless of case) and phones belong to one user each.
pub(crate) fn keys_must_be_free(tx: &mut dyn IdentityTx, user: &User) -> IdentityResult<()> {
    let me = Some(user.id.as_str());
    must_be_free(
        tx,
        Kind::User,
        Key::Username,
        user.username.as_deref(),
        None,
        me,
        "user.username_already_in_use",
        "username",
    )?;
    let email = user.primary_email.as_deref().map(email_key);
    must_be_free(
        tx,
        Kind::User,
        Key::Email,
        email.as_deref(),
        None,
        me,
        "user.email_already_in_use",
        "email",
    )?;
    must_be_free(
        tx,
        Kind::User,
        Key::Phone,
        user.primary_phone.as_deref(),
        None,
        me,
        "user.phone_already_in_use",
        "phone number",
    )
}

/// `POST /users` → `User.Created`, data = the user with `hasPassword`. `credential` is the
/// password hash (argon2id) or an imported digest.
pub async fn create(
    store: &dyn IdentityStore,
    em: Emitter,
    user: User,
    credential: Option<String>,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        keys_must_be_free(tx, &user)?;
        let has_password = credential.is_some();
        tx.insert(Kind::User, &user_doc(&user, has_password)?)?;
        if let Some(hash) = &credential {
            tx.set_credential(Kind::User, &user.id, hash)?;
        }
        let api = ApiUser {
            user: &user,
            has_password,
        };
        answer(tx, &em, HookEvent::USER_CREATED, &api)
    })
    .await
}

/// The `PATCH /users/:userId…` routes → `event` (User.Data.Updated or
/// User.SuspensionStatus.Updated). The answer, and the event's data, is the user with
/// `hasPassword`, or for `…/custom-data` and `…/profile` the merged object alone (Logto
/// answers `user.customData` / `user.profile` there).
pub async fn change(
    store: &dyn IdentityStore,
    em: Emitter,
    id: String,
    change: UserChange,
    event: HookEvent,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        let (current, had_password) = load_user(tx, &id)?;
        let (user, password_hash) = change.apply(current, em.now_ms())?;
        let has_password = had_password || password_hash.is_some();
        keys_must_be_free(tx, &user)?;
        tx.update(Kind::User, &user_doc(&user, has_password)?)?;
        if let Some(hash) = password_hash {
            tx.set_credential(Kind::User, &user.id, hash)?;
        }
        match &change {
            UserChange::MergeCustomData(_) => answer(tx, &em, event, &user.custom_data),
            UserChange::MergeProfile(_) => answer(tx, &em, event, &user.profile),
            _ => answer(
                tx,
                &em,
                event,
                &ApiUser {
                    user: &user,
                    has_password,
                },
            ),
        }
    })
    .await
}

/// `DELETE /users/:userId` → `User.Deleted`, data = the user-info fields as they were (no
/// `hasPassword`), right after `ip`. Its role assignments and memberships go with it.
pub async fn delete(store: &dyn IdentityStore, em: Emitter, id: String) -> IdentityResult<Value> {
    transact(store, move |tx| {
        let (user, _) = load_user(tx, &id)?;
        tx.delete(Kind::User, &id)?;
        tx.emit(&[em.deleted(HookEvent::USER_DELETED, to_json(&user)?)])?;
        Ok(Value::Null)
    })
    .await
}

/// The role ids of `ids` that name user roles, or the first that does not exist (404) or is a
/// machine-to-machine role (422 `user.invalid_role_type`).
fn user_roles(tx: &mut dyn IdentityTx, ids: &[String]) -> IdentityResult<()> {
    for role in ids {
        let r: Role = load(tx, Kind::Role, role)?;
        if r.kind != RoleType::User {
            return Err(IdentityError::Conflict {
                code: "user.invalid_role_type",
                message: format!("The role `{role}` is for machine-to-machine apps, not users."),
            });
        }
    }
    Ok(())
}

/// `POST /users/:userId/roles {roleIds}`: assigns roles; ones held already are skipped
/// (Logto's route is idempotent). Answers `{roleIds, addedRoleIds}`.
pub async fn assign_roles(
    store: &dyn IdentityStore,
    user_id: String,
    role_ids: Vec<String>,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        must_exist(tx, Kind::User, std::slice::from_ref(&user_id))?;
        user_roles(tx, &role_ids)?;
        let mut added = Vec::new();
        for role in &role_ids {
            if tx.link(Link::UserRoles, None, &user_id, role)? {
                added.push(role.clone());
            }
        }
        Ok(json!({"roleIds": role_ids, "addedRoleIds": added}))
    })
    .await
}

/// `PUT /users/:userId/roles {roleIds}`: the user's roles become exactly these. Answers
/// `{roleIds}`.
pub async fn replace_roles(
    store: &dyn IdentityStore,
    user_id: String,
    role_ids: Vec<String>,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        must_exist(tx, Kind::User, std::slice::from_ref(&user_id))?;
        user_roles(tx, &role_ids)?;
        for old in tx.linked(Link::UserRoles, None, &user_id)? {
            if !role_ids.contains(&old) {
                tx.unlink(Link::UserRoles, None, &user_id, &old)?;
            }
        }
        for role in &role_ids {
            tx.link(Link::UserRoles, None, &user_id, role)?;
        }
        Ok(json!({ "roleIds": role_ids }))
    })
    .await
}

/// `DELETE /users/:userId/roles/:roleId`.
pub async fn remove_role(
    store: &dyn IdentityStore,
    user_id: String,
    role_id: String,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        must_exist(tx, Kind::User, std::slice::from_ref(&user_id))?;
        if !tx.unlink(Link::UserRoles, None, &user_id, &role_id)? {
            return Err(IdentityError::not_found(Kind::Role, &role_id));
        }
        Ok(Value::Null)
    })
    .await
}

/// The setting that records that every stored user's email is keyed by today's
/// [`email_key`] (NFC, then lowercase; issue 13). Before, keys were only lowercased.
const EMAIL_KEYS_SETTING: &str = "email_keys_nfc";

/// Once per database, at start: re-keys the users stored when email keys were only
/// lowercased, so that an email written decomposed (NFD) can still sign in, and stores the
/// email itself in NFC. A user whose new key is taken by another (the duplicate accounts
/// the old rule allowed) is left as it was and named in the log, for an operator to merge.
/// Returns how many users were re-keyed and how many conflicted; nothing when done before.
pub async fn rekey_emails(store: &dyn crate::storage::Store) -> IdentityResult<(usize, usize)> {
    if store.setting(EMAIL_KEYS_SETTING).await?.is_some() {
        return Ok((0, 0));
    }
    let (docs, _) = store.list_docs(Kind::User, &Default::default()).await?;
    let (mut rekeyed, mut conflicts) = (0, 0);
    for doc in docs {
        let user: User = serde_json::from_value(doc).map_err(|e| {
            IdentityError::Store(StoreError::Corrupt(format!("a stored user: {e}")))
        })?;
        let Some(email) = user.primary_email.as_deref() else {
            continue;
        };
        if crate::domain::identity::user::nfc(email) == email
            && email_key(email) == email.to_lowercase()
        {
            continue;
        }
        let id = user.id.clone();
        let result = transact(store, move |tx| {
            let (mut user, has_password) = load_user(tx, &id)?;
            user.primary_email = user
                .primary_email
                .as_deref()
                .map(crate::domain::identity::user::nfc);
            keys_must_be_free(tx, &user)?;
            tx.update(Kind::User, &user_doc(&user, has_password)?)?;
            Ok(())
        })
        .await;
        match result {
            Ok(()) => rekeyed += 1,
            Err(IdentityError::Conflict { .. }) => {
                tracing::warn!(user_id = %user.id, "a user's email is another user's in Unicode NFC; left as it was, merge them by hand");
                conflicts += 1;
            }
            Err(IdentityError::NotFound { .. }) => {} // deleted meanwhile
            Err(e) => return Err(e),
        }
    }
    store.set_setting_if_absent(EMAIL_KEYS_SETTING, "1").await?;
    if rekeyed + conflicts > 0 {
        tracing::info!(rekeyed, conflicts, "re-keyed stored emails in Unicode NFC");
    }
    Ok((rekeyed, conflicts))
}
