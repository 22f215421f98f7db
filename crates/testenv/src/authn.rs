//! Authentication: the bearer tokens a test registers, and the user each one stands for.
//!
//! - No `Authorization` header: the server's own admin. The test harness acts as cluster-admin, so
//!   every request it sends is allowed (a real API server would call it `system:anonymous`).
//! - `Authorization: Bearer <token>` with a token registered by [`Cluster::add_token`]: that
//!   token's [`User`], whom the RBAC authorizer (`rbac.rs`) then allows or denies.
//! - Any other `Authorization` header (an unknown or empty token, another scheme): 401
//!   Unauthorized, as a real API server answers a token no authenticator accepts. Credentials
//!   that fail never fall back to the admin.
//!
//! [`Cluster::add_token`]: crate::Cluster::add_token

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::status::ApiError;

/// Every authenticated user is in this group (the authenticator's group adder puts it there).
pub(crate) const AUTHENTICATED: &str = "system:authenticated";

/// Members of this group pass authorization whatever RBAC says (kube-apiserver's privileged group).
pub(crate) const MASTERS: &str = "system:masters";

/// An authenticated user, as the API server's authenticators report one (`user.Info`): a name and
/// groups. RBAC subjects match the name (`User`, `ServiceAccount`) or a group (`Group`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user name, e.g. `jane` or `system:serviceaccount:rlscale-system:rlscale-controller`.
    pub name: String,
    /// The groups, `system:authenticated` included.
    pub groups: Vec<String>,
}

impl User {
    /// A user named `name` in `groups`, and in `system:authenticated`, as every authenticated
    /// user is.
    pub fn new(name: &str, groups: &[&str]) -> User {
        let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.into());
        }
        User {
            name: name.into(),
            groups,
        }
    }

    /// The user a ServiceAccount's token authenticates as: `system:serviceaccount:<ns>:<name>`, in
    /// the groups `system:serviceaccounts`, `system:serviceaccounts:<ns>` and
    /// `system:authenticated`.
    /// (The ServiceAccount object itself need not exist here; a real server checks that it does.)
    pub fn service_account(namespace: &str, name: &str) -> User {
        User::new(
            &format!("system:serviceaccount:{namespace}:{name}"),
            &[
                "system:serviceaccounts",
                &format!("system:serviceaccounts:{namespace}"),
            ],
        )
    }

    /// A cluster administrator (`kubernetes-admin` in `system:masters`): allowed everything, as the
    /// requests without a token are, but told apart in the request log.
    pub fn admin() -> User {
        User::new("kubernetes-admin", &[MASTERS])
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// Who sent a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Identity {
    /// No credentials: the server's own admin, never subject to authorization.
    Admin,
    /// A registered bearer token's user.
    User(User),
}

/// The identity behind an `Authorization` header (`None`: no header), or 401.
pub(crate) fn authenticate(
    tokens: &HashMap<String, User>,
    authorization: Option<&str>,
) -> Result<Identity, ApiError> {
    let Some(header) = authorization else {
        return Ok(Identity::Admin);
    };
    // client-go and kube send `Bearer <token>`; the scheme is case-insensitive (as the API server's
    // bearer-token authenticator reads it).
    let token = header
        .trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    match token.and_then(|t| tokens.get(t)) {
        Some(user) => Ok(Identity::User(user.clone())),
        None => Err(ApiError::unauthorized()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_account_is_named_and_grouped_as_its_token_authenticates() {
        let u = User::service_account("rlscale-system", "rlscale-controller");
        assert_eq!(
            u.name,
            "system:serviceaccount:rlscale-system:rlscale-controller"
        );
        assert_eq!(
            u.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:rlscale-system",
                "system:authenticated"
            ]
        );
    }

    #[test]
    fn no_header_is_the_admin_a_registered_token_its_user_anything_else_401() {
        let tokens = HashMap::from([("t0k".to_string(), User::new("jane", &[]))]);
        assert_eq!(authenticate(&tokens, None), Ok(Identity::Admin));
        for header in ["Bearer t0k", "bearer t0k"] {
            assert_eq!(
                authenticate(&tokens, Some(header)),
                Ok(Identity::User(User::new("jane", &[]))),
                "{header:?}"
            );
        }
        for header in [
            "Bearer other",
            "Bearer ",
            "Bearer",
            "Basic amFuZTpwdw==",
            "t0k",
            "",
        ] {
            let e = authenticate(&tokens, Some(header)).unwrap_err();
            assert_eq!(
                e.to_status(),
                serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized",
                    "code": 401}),
                "{header:?}"
            );
        }
    }
}
