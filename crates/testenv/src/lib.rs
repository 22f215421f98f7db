//! A small, faithful, in-memory Kubernetes API server for tests and local development.
//!
//! It speaks the real Kubernetes HTTP API (JSON only, plain HTTP), so `kube::Client`,
//! `kube::runtime::watcher`, `Recorder` and `Discovery` work against it unchanged (the
//! integration tests drive it with kube 5's real client; other clients are untested).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = rlscale_testenv::TestApiServer::start().await?;
//! let kubeconfig = server.kubeconfig_yaml("default"); // point kube::Config at this
//! // ... run the code under test ...
//! let writes = server.writes(); // every write request, in order
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Resources served
//!
//! Discovery (`/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}`,
//! `/apis/{group}/{version}`, and aggregated discovery `apidiscovery.k8s.io/v2` when the
//! `Accept` header asks for it) lists exactly these:
//!
//! - core `v1`: `namespaces` (+`/status`; `default`, `kube-system`, `kube-public` exist),
//!   `events`, `configmaps`, `pods` (+`/status`);
//! - `apps/v1`: `deployments` (+`/status`, `/scale`);
//! - `autoscaling/v2`: `horizontalpodautoscalers` (+`/status`);
//! - `coordination.k8s.io/v1`: `leases`;
//! - `events.k8s.io/v1`: `events` (a view of the core `v1` Events, see below);
//! - `apiextensions.k8s.io/v1`: `customresourcedefinitions` (+`/status`), and every resource
//!   a CRD defines (served versions, `/status` and `/scale` subresources as declared);
//! - `rbac.authorization.k8s.io/v1`: `roles`, `rolebindings`, `clusterroles`,
//!   `clusterrolebindings` (what the authorizer below reads).
//!
//! # Faithful behaviour
//!
//! - `kubectl get` on a custom resource: a request whose `Accept` asks for `as=Table` gets a
//!   `meta.k8s.io/v1` Table with `Name` and the CRD version's `additionalPrinterColumns` (ages for
//!   `date` columns), as the apiextensions server prints it (`src/table.rs`); built-ins stay JSON.
//! - Authentication (issue 18): a test registers bearer tokens with [`TestApiServer::add_token`]
//!   (e.g. [`User::service_account`]: `system:serviceaccount:<ns>:<name>` in the groups
//!   `system:serviceaccounts`, `system:serviceaccounts:<ns>` and `system:authenticated`) and hands
//!   the client [`TestApiServer::kubeconfig_yaml_with_token`]. A request with an unknown bearer
//!   token (or any other `Authorization` header) is answered 401 `Unauthorized`, as a real API
//!   server answers it. A request **without** an `Authorization` header is the server's own
//!   admin and always allowed: the test harness acts as cluster-admin, and every test that sends no
//!   token runs as before.
//! - RBAC authorization (issue 18) for a registered token's user, as kube-apiserver's RBAC
//!   authorizer decides, before any handler, fault or storage sees the request:
//!   - Request → verb as `RequestInfoFactory` maps it: GET on a collection `list` (`watch` with
//!     `?watch=true`), GET on a name `get`, POST `create`, PUT `update`, PATCH `patch`, DELETE on a
//!     name `delete`, on a collection `deletecollection`; the resource is `plural` or
//!     `plural/subresource`; a list's or watch's `metadata.name` field selector is its name; a
//!     namespace's own URLs (`/api/v1/namespaces/x`) are in namespace `x`.
//!   - ClusterRoleBindings grant their ClusterRole everywhere; RoleBindings grant their Role, or
//!     a ClusterRole, in the binding's namespace only. Subjects: `User`, `Group`, `ServiceAccount`
//!     (its namespace defaulting to the binding's). A binding to a missing role grants nothing and
//!     is named in the 403's reason (`RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`).
//!   - Rules: `apiGroups`, `resources` (`plural`, `plural/sub`, `*/sub`, `*`), `verbs` (`*`),
//!     `resourceNames` (never matching a request without a name: create, list and watch without a
//!     name selector, deletecollection), `nonResourceURLs` (exact or `prefix*`).
//!   - Built in, as the bootstrap policy binds them to `system:authenticated`: discovery
//!     (`/api*`, `/apis*`, `/version`, `/healthz`, `/livez`, `/readyz`, `/openapi*`: the
//!     `system:discovery` role) and `system:basic-user`'s self-reviews. Members of
//!     `system:masters` ([`User::admin`]) are allowed everything.
//!   - Denied: 403 `Forbidden` worded as `responsewriters.Forbidden` and `NewForbidden` word it,
//!     e.g. `deployments.apps "llm" is forbidden: User
//!     "system:serviceaccount:rlscale-system:rlscale-controller" cannot patch resource
//!     "deployments/scale" in API group "apps" in the namespace "default"`
//!     (`at the cluster scope` without a namespace; `deployments.apps is forbidden: ...` without a
//!     name; `forbidden: User "u" cannot get path "/"` for a non-resource URL), with `details`
//!     {name, group, kind: the resource}. A refused request changes nothing, is in
//!     [`TestApiServer::requests`] (status 401/403, with its [`RequestRecord::user`]) and not in
//!     [`TestApiServer::writes`].
//!   - RBAC objects are validated on write (rules need verbs, and API groups and resources or
//!     non-resource URLs, the latter in ClusterRoles only; a binding's `roleRef` names a kind its
//!     scope may reference and cannot change; subjects have a supported kind, a name, and a
//!     ServiceAccount in a ClusterRoleBinding a namespace) and defaulted (`roleRef.apiGroup`, a
//!     `User`/`Group` subject's `apiGroup`); the first error is answered 422.
//! - One global, decimal resourceVersion counter; every stored change bumps it; a no-op
//!   update/patch does not (no new RV, no watch event).
//! - Create sets `uid`, `creationTimestamp`, `resourceVersion`, `generation` (for resources
//!   whose registry strategy tracks it: deployments, HPAs, CRDs and custom resources),
//!   supports `generateName`, rejects a set `resourceVersion` (400), a missing name (422),
//!   a namespace mismatch (400), a missing namespace (404 `namespaces "x" not found`),
//!   duplicates (409 AlreadyExists), and honours `dryRun=All`.
//! - Errors are `metav1.Status` objects with the apiserver's reasons and messages
//!   (NotFound, AlreadyExists, Conflict, Invalid, BadRequest, MethodNotAllowed, Expired...).
//! - Update: stale `metadata.resourceVersion` → 409 Conflict; unset → unconditional.
//!   `generation` bumps when anything but metadata/status changes (deployments: annotations
//!   too). With a status subresource the main resource ignores `.status` and `/status`
//!   changes only `.status`.
//! - Patch: JSON patch (RFC 6902, failing ops → 422), merge patch (RFC 7386), strategic
//!   merge patch (built-ins only; 415 for custom resources as on a real server) and
//!   server-side apply (`fieldManager` required → 422 as the real server answers; creates a
//!   missing object with 201). A `resourceVersion` in the patched object is a precondition.
//! - Events (issue 18): an Event with an `eventTime` (every `events.k8s.io/v1` Event) needs its
//!   reporting controller and instance, action and reason (each ≤ 128 bytes), and a note
//!   (`message` in core `v1`) of at most 1024 bytes; `events.k8s.io/v1` also needs the
//!   `eventTime` and a `type` of `Normal` or `Warning`. Otherwise 422 Invalid, as
//!   `ValidateEventCreate` answers.
//! - Events as one store (issue 18): core `v1` and `events.k8s.io/v1` Events are two views of
//!   the same stored objects, as kube-apiserver stores only core Events and converts them
//!   (`pkg/apis/events/v1/conversion.go`): `note` ↔ `message`, `regarding` ↔ `involvedObject`,
//!   `reportingController` ↔ `reportingComponent`, `deprecatedSource` ↔ `source`,
//!   `deprecatedFirstTimestamp`/`deprecatedLastTimestamp`/`deprecatedCount` ↔
//!   `firstTimestamp`/`lastTimestamp`/`count`; `related`, `reportingInstance`, `series`,
//!   `eventTime`, `action`, `reason` and `type` keep their names, and a field `events.k8s.io/v1`
//!   does not have is dropped from a write through it. An Event written (created, updated,
//!   patched, deleted) through either API is read, listed and watched through both, with one
//!   resourceVersion and one name space (a name taken through one API is a 409 through the other);
//!   the Event rules above apply whichever API writes (checked on the request's form, so the error
//!   names `note` or `message`); field selectors match the object as the request's API shows it
//!   (`regarding.name`, `involvedObject.name`); `involvedObject`/`source` are always present (`{}`)
//!   as Go's encoding writes them (unset timestamps are absent here where a real server writes
//!   `null`).
//! - Custom resources (issue 18): the served version's `schema.openAPIV3Schema` from the stored CRD
//!   is applied to every write (create, update, JSON/merge patch, server-side apply, `/status`) as
//!   the apiextensions server applies it: fields the structural schema does not declare are pruned
//!   silently at every depth (inside `status`, array items and `additionalProperties` too), except
//!   under `x-kubernetes-preserve-unknown-fields: true` and for `apiVersion`, `kind` and `metadata`;
//!   a `null` field that is neither `nullable` nor defaulted is dropped (a null array item is not,
//!   and fails validation); `default`s fill absent fields, nested ones only inside objects that
//!   exist; then the object is validated (`type`, `nullable`, `enum`, `required`,
//!   `minimum`/`maximum` and their `exclusive*`, `multipleOf`, `minLength`/`maxLength`, `pattern`,
//!   `minItems`/`maxItems`, `minProperties`/`maxProperties`, `x-kubernetes-int-or-string`) and
//!   refused with 422 Invalid, one cause per error with its `field` (`spec.maxReplicas`,
//!   `status.conditions[0].type`) and reason (`FieldValueTypeInvalid`, `FieldValueRequired`,
//!   `FieldValueNotSupported`, `FieldValueInvalid`, `FieldValueTooLong`, `FieldValueTooMany`), and
//!   the real message (`RLAutoscaler.rlscale.dev "x" is invalid: spec.maxReplicas: Invalid value:
//!   "string": spec.maxReplicas in body must be of type integer: "string"`). A served version
//!   without a schema stores its objects as sent (apiextensions `v1` would refuse such a CRD).
//! - Zero-valued `omitempty` scalars are dropped, as the API server's typed encoding drops them,
//!   by the struct tags of `k8s.io/api`: a Deployment's status counts (`replicas`,
//!   `readyReplicas`, `availableReplicas`, `updatedReplicas`, `unavailableReplicas`,
//!   `observedGeneration`: a Deployment with no ready pod has no `readyReplicas`), an HPA's
//!   `status.currentReplicas`, and a Scale's `spec.replicas` (a Scale of 0 replicas has
//!   `spec: {}`). Kept at 0, as a real server keeps them: pointers (a Deployment's
//!   `terminatingReplicas`, an HPA's `observedGeneration`), and fields without `omitempty` (an
//!   HPA's `desiredReplicas`, a Scale's `status.replicas`).
//! - Scale subresource: `autoscaling/v1` Scale views of deployments and CRDs with scale
//!   paths; writes only change the replicas; stale RVs conflict.
//! - Delete: DeleteOptions preconditions; objects with finalizers get `deletionTimestamp` and
//!   disappear when an update removes the last finalizer; pods, namespaces and CRDs answer
//!   with the object, other resources with a `Status` of `Success` (as `ReturnDeletedObject`
//!   in the real registries).
//! - List: label selectors (`=`, `==`, `!=`, exists, `!`, `in`, `notin`, `>`, `<`), field
//!   selectors (`metadata.name`, `metadata.namespace`, plus a few per-resource fields;
//!   others → 400 `field label not supported`), `limit`/`continue` with etcd-style opaque
//!   tokens and key order, built-in list items without kind/apiVersion.
//! - Watch: chunked newline-delimited events; `resourceVersion` unset/`0` → synthetic ADDED
//!   for the current state; a specific RV → history after it; an RV older than the retained
//!   history (see [`TestApiServer::compact`]) → one ERROR event with a 410 `Expired` Status;
//!   objects that stop/start matching a selector produce DELETED/ADDED as the watch cache
//!   does; `allowWatchBookmarks` → periodic BOOKMARKs (default every second, see
//!   [`Cluster::set_bookmark_interval`]); `sendInitialEvents=true` (streaming lists) → initial
//!   ADDED events and a BOOKMARK annotated `k8s.io/initial-events-end: "true"`;
//!   `timeoutSeconds` ends the stream. `PartialObjectMetadata` is served when asked for.
//!
//! # Simplifications (deliberate)
//!
//! - **Strategic merge patch is applied as a JSON merge patch** (lists are replaced, `$patch`
//!   directives are not interpreted).
//! - **Server-side apply is a merge patch**: no `managedFields` are recorded, no field
//!   ownership, no apply conflicts (so `force` is accepted but changes nothing).
//! - **Defaulting and validation are partial**: deployments get the apps/v1 defaults
//!   (replicas, strategy, revisionHistoryLimit, progressDeadlineSeconds, pod template
//!   defaults), pods the pod-spec defaults, HPAs `minReplicas`, default CPU metric and
//!   behavior defaults; names are checked as DNS subdomains (namespaces: labels); Events as
//!   above; custom resources by their CRD's schema, as above. Other validation of built-in
//!   objects is not done, and `omitempty` is applied to the fields above only.
//! - **No controllers**: nothing reconciles deployments into pods, no garbage collection
//!   follows ownerReferences. CRD status (`NamesAccepted`, `Established`, `acceptedNames`,
//!   `storedVersions`) is set synchronously on write; deleting a CRD deletes its custom
//!   resources and stops serving it at once; deleting a namespace deletes its contents at
//!   once (a real namespace lingers in `Terminating`). The immortal namespaces cannot be
//!   deleted (403).
//! - **Reads are always "most recent"**: `resourceVersion`/`resourceVersionMatch` on get and
//!   list do not select older snapshots, and `continue` pages show the current state
//!   (the list RV is the first page's). Continue tokens older than [`TestApiServer::compact`]
//!   are 410 Expired.
//! - Custom resource versions share one storage and are converted by rewriting `apiVersion`
//!   (the CRD `None` conversion strategy).
//! - Only JSON is spoken (no protobuf, CBOR or YAML bodies; kube sends JSON even for apply).
//! - Authentication is by registered bearer tokens only (no client certificates, no
//!   ServiceAccount token issuance or `TokenReview`); a ServiceAccount's token works whether or not
//!   the ServiceAccount object exists (ServiceAccounts are not served). Any `Authorization`
//!   header but a registered bearer token is a 401, where a real server treats a header none of
//!   its authenticators recognises (basic auth) as `system:anonymous`; and there is no anonymous
//!   user: no header is the admin.
//!
//! # Not enforced: what a real API server refuses (or changes) and this one does not
//!
//! A test passing here can still fail on a cluster for these (issue 18 found four bugs that the
//! server let through before it learnt the Event and Deployment-status rules above):
//!
//! - **Authorization of the harness**: requests without a token are an all-allowed admin; only
//!   clients given a registered token are authorized, so a test must give the code under test its
//!   own token (as `tests/rbac.rs` does for the controller) for RBAC to apply to it.
//! - **RBAC beyond rule matching**: no aggregated ClusterRoles (an `aggregationRule` does not
//!   collect rules: such a role grants only the rules stored in it); no privilege-escalation
//!   checks (a user may create or bind a role granting more than it holds, without the `escalate`
//!   or `bind` verbs); no impersonation (`Impersonate-*` headers are ignored, and the
//!   `impersonate` verb is never checked); no bootstrap roles or bindings are stored
//!   (`cluster-admin`, `admin`, `edit`, `view`, `system:*` do not exist as objects; only the
//!   discovery grants above are built in); no `SelfSubjectAccessReview`/`SubjectAccessReview`
//!   API; no Node or webhook authorizers; a request that fails authorization on a resource this
//!   server does not serve gets the 403 too (as on a real server), but its attributes come from
//!   this server's path parsing, which ignores the deprecated `/api/v1/watch/...` paths.
//! - **A CRD's schema beyond the rules above**: `x-kubernetes-validations` (CEL) rules are not
//!   evaluated; `format` is ignored (`int32`, `date-time`, ... are not checked); `anyOf`, `allOf`,
//!   `oneOf` and `not` are not evaluated; `x-kubernetes-list-type: set`/`map` uniqueness and
//!   `x-kubernetes-map-type` are not checked; there is no validation ratcheting (an update that
//!   leaves an already invalid field unchanged is refused here, accepted by a real server); the
//!   `fieldValidation` parameter is ignored (unknown fields are always dropped silently: no
//!   `Strict` 400/422, no `Warn` warning header); `metadata` is not coerced against the schema, and
//!   an embedded resource's `apiVersion`/`kind` are not required; defaults are applied on writes
//!   only (a real server also defaults on reads from storage, which shows after a CRD gains a
//!   default). The CRD itself is not checked for a structural schema, valid defaults or allowed
//!   keywords; there are no conversion webhooks (versions share one storage, see above); with
//!   several errors in one object the order of the causes is fixed here (properties by name) where
//!   kube-openapi walks a Go map.
//! - **Event validation beyond the rules above**: not the format of `reportingController`, the
//!   `series` rules, the fields an update may not change, nor the core-`v1` rules for Events without
//!   an `eventTime`.
//! - **Zero values of built-in objects**: dropped for the Deployment, HPA and Scale fields above
//!   only; other built-in objects (pods, Leases, ConfigMaps, Namespaces, a Deployment's or HPA's
//!   spec) keep the zero values and empty strings or lists a client writes, and an HPA's
//!   `status.conditions: []` is kept where a real server drops it.
//! - **Validation of other built-in objects**: an HPA's spec is not validated (`maxReplicas` below
//!   `minReplicas`, `minReplicas: 0` without an Object or External metric, bad metric specs are
//!   stored); a Deployment is checked for `spec.replicas ≥ 0` and a selector only; pods, ConfigMaps
//!   and Leases are not validated.
//! - **Admission**: no admission plugins, policies or webhooks (quotas, limit ranges, namespace
//!   lifecycle beyond "the namespace exists", pod security).

#![warn(missing_docs)]

mod authn;
mod events;
pub mod prometheus;
mod rbac;
mod records;
mod resources;
mod schema;
mod selectors;
mod server;
mod status;
mod store;
mod table;
mod util;
mod watch;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use authn::User;
pub use records::{Fault, RequestRecord, WriteRecord};
pub use store::Cluster;

/// Serves the Kubernetes API for `cluster` on `listener` until `shutdown` resolves.
///
/// On shutdown, open watch streams end and the server returns once in-flight requests are
/// done.
pub async fn serve(
    listener: TcpListener,
    cluster: Cluster,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(listener, cluster, shutdown).await
}

/// A running API server on a local port, with its state.
#[derive(Debug)]
pub struct TestApiServer {
    addr: SocketAddr,
    cluster: Cluster,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApiServer {
    /// Starts a server on `127.0.0.1` with an ephemeral port.
    pub async fn start() -> std::io::Result<TestApiServer> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts a server on `addr`.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<TestApiServer> {
        Self::start_with(addr, Cluster::new()).await
    }

    /// Starts a server on `addr` serving an existing `cluster` state.
    pub async fn start_with(addr: SocketAddr, cluster: Cluster) -> std::io::Result<TestApiServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, cluster.clone(), async move {
            let _ = rx.await;
        }));
        Ok(TestApiServer {
            addr,
            cluster,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The shared cluster state (objects, logs, faults).
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// A kubeconfig (cluster `testenv`, user `testenv`, context `testenv` with `namespace`)
    /// pointing at [`url`](Self::url).
    pub fn kubeconfig_yaml(&self, namespace: &str) -> String {
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: testenv\n  cluster:\n    server: {url}\n\
             users:\n\
             - name: testenv\n  user: {{}}\n\
             contexts:\n\
             - name: testenv\n  context:\n    cluster: testenv\n    user: testenv\n    namespace: {namespace}\n\
             current-context: testenv\n\
             preferences: {{}}\n",
            url = self.url()
        )
    }

    /// A kubeconfig like [`kubeconfig_yaml`](Self::kubeconfig_yaml) whose user sends
    /// `Authorization: Bearer <token>`: register the token with [`add_token`](Self::add_token), and
    /// RBAC decides what the client may do.
    pub fn kubeconfig_yaml_with_token(&self, namespace: &str, token: &str) -> String {
        self.kubeconfig_yaml(namespace)
            .replace("user: {}", &format!("user:\n    token: {token}"))
    }

    /// Registers a bearer token for `user` (see [`Cluster::add_token`]).
    pub fn add_token(&self, token: &str, user: User) {
        self.cluster.add_token(token, user);
    }

    /// Writes [`kubeconfig_yaml`](Self::kubeconfig_yaml) to `path`.
    pub fn write_kubeconfig(&self, path: &Path, namespace: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml(namespace))
    }

    /// Every write request so far (also `GET /testenv/writes`).
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.cluster.writes()
    }

    /// Every request so far with its verb (also `GET /testenv/requests`).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.cluster.requests()
    }

    /// Installs a fault (also `POST /testenv/faults`).
    pub fn inject(&self, fault: Fault) {
        self.cluster.inject(fault);
    }

    /// Removes all faults (also `DELETE /testenv/faults`).
    pub fn clear_faults(&self) {
        self.cluster.clear_faults();
    }

    /// Forgets watch history: watches resuming from an older resourceVersion get 410 Gone
    /// (also `POST /testenv/compact`).
    pub fn compact(&self) {
        self.cluster.compact();
    }

    /// Stops the server: open watches end, then the listener closes.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
