//! Users: create, change, delete (each with its event), and their roles (no event: Logto fires
//! none for role assignments).

use super::{answer, doc, load, must_be_free, must_exist, Emitter};
use crate::domain::event::HookEvent;
use crate::domain::identity::authz::{Role, RoleType};
use crate::domain::identity::user::{email_key, User, UserChange};
use crate::storage::identity::{
    transact,
    IdentityError, IdentityResult, IdentityStore, IdentityTx, Key, Kind, Link,
};
use serde_json::Value;

pub(crate) fn user_doc(user: &User) -> IdentityResult<crate::storage::identity::Doc> {
    doc(
        &user.id,
        user,
        vec![
            (Key::Username, user.username.clone()),
            (Key::Email, user.primary_email.as_deref().map(email_key)),
            (Key::Phone, user.primary_phone.clone()),
        ],
        None,
        user.created_at,
    )
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

/// `POST /users` → `User.Created`, data = the user.
pub async fn create(
    store: &dyn IdentityStore,
    em: Emitter,
    user: User,
    password_hash: Option<String>,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
            keys_must_be_free(tx, &user)?;
            tx.insert(Kind::User, &user_doc(&user)?)?;
            if let Some(hash) = &password_hash {
                tx.set_credential(Kind::User, &user.id, hash)?;
            }
            answer(tx, &em, HookEvent::USER_CREATED, &user)
        })
        .await
}

/// The `PATCH /users/:userId…` routes → `event` (User.Data.Updated or
/// User.SuspensionStatus.Updated), data = the user after the change.
pub async fn change(
    store: &dyn IdentityStore,
    em: Emitter,
    id: String,
    change: UserChange,
    event: HookEvent,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
            let current: User = load(tx, Kind::User, &id)?;
            let (user, password_hash) = change.apply(current, em.now_ms());
            keys_must_be_free(tx, &user)?;
            tx.update(Kind::User, &user_doc(&user)?)?;
            if let Some(hash) = password_hash {
                tx.set_credential(Kind::User, &user.id, hash)?;
            }
            answer(tx, &em, event, &user)
        })
        .await
}

/// `DELETE /users/:userId` → `User.Deleted`, data = the user as it was. Its role
/// assignments and memberships go with it.
pub async fn delete(store: &dyn IdentityStore, em: Emitter, id: String) -> IdentityResult<Value> {
    transact(store, move |tx| {
            let user: User = load(tx, Kind::User, &id)?;
            tx.delete(Kind::User, &id)?;
            answer(tx, &em, HookEvent::USER_DELETED, &user)
        })
        .await
}

/// `POST /users/:userId/roles {roleIds}`: assigns roles; one assigned already is a 422.
pub async fn assign_roles(
    store: &dyn IdentityStore,
    user_id: String,
    role_ids: Vec<String>,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
            must_exist(tx, Kind::User, std::slice::from_ref(&user_id))?;
            for role in &role_ids {
                let r: Role = load(tx, Kind::Role, role)?;
                if r.kind != RoleType::User {
                    return Err(IdentityError::Conflict {
                        code: "user.role_type_mismatch",
                        message: format!(
                            "The role `{role}` is for machine-to-machine apps, not users."
                        ),
                    });
                }
            }
            for role in &role_ids {
                if !tx.link(Link::UserRoles, None, &user_id, role)? {
                    return Err(IdentityError::Conflict {
                        code: "user.role_exists",
                        message: format!("The user already has the role `{role}`."),
                    });
                }
            }
            Ok(Value::Null)
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
