//! The merchant's OpenAPI 3.1 document, generated from one route table ([`ROUTES`]).
//!
//! The table is data: every route the backend serves, with its method, path, summary, required
//! permission, wire types and main error statuses. The integration test `tests/api/openapi.rs`
//! keeps it true: every documented route must answer (no 404 without a Taler code, no 405), and
//! every `.route("…")` in `src/http/` must be documented. Request and response bodies are the JSON
//! Schemas of their `cardcash_api::merchant` wire types (`schemars`; the protocol values' schemas
//! are in `cardcash_util::schema`), collected in `components.schemas`. Never does IO.

use cardcash_api::merchant as m;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::auth::Permission;

/// A body's JSON Schema, as a reference into `components.schemas` where the type has a name.
pub type Body = fn(&mut SchemaGenerator) -> Schema;

/// [`Body`] of a wire type.
fn body<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anybody (wallets, browsers).
    Public,
    /// The admin token (`ADMIN_TOKEN`) only.
    Management,
    /// A credential of the instance with this permission (or the admin token).
    Instance(Permission),
}

/// One route the merchant serves.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// The path, relative to the instance's base URL when `instance_relative`.
    pub path: &'static str,
    /// Served at `/…` for the default instance and under `/instances/{instance}/…`.
    pub instance_relative: bool,
    pub summary: &'static str,
    pub access: Access,
    /// The request body's wire type (in `cardcash_api::merchant`), if any.
    pub request: Option<Body>,
    /// The success answer's status and wire type (`None`: no body or not JSON).
    pub success: (u16, Option<Body>),
    /// The main error statuses (each answers a Taler error body).
    pub errors: &'static [u16],
}

#[expect(
    clippy::too_many_arguments,
    reason = "one table row per call, read as a row"
)]
const fn r(
    method: &'static str,
    path: &'static str,
    instance_relative: bool,
    summary: &'static str,
    access: Access,
    request: Option<Body>,
    success: (u16, Option<Body>),
    errors: &'static [u16],
) -> Route {
    Route {
        method,
        path,
        instance_relative,
        summary,
        access,
        request,
        success,
        errors,
    }
}

use Access::{Instance as I, Management, Public};
use Permission as P;

/// Every route of `http::router::router`, in the same order.
#[rustfmt::skip]
pub static ROUTES: &[Route] = &[
    r("get", "/config", false, "The backend's version, currency and capabilities", Public, None, (200, Some(body::<m::MerchantConfig>)), &[]),
    r("get", "/openapi.json", false, "This OpenAPI document", Public, None, (200, None), &[]),
    // Management (admin token).
    r("post", "/management/instances", false, "Create an instance", Management, Some(body::<m::instances::InstanceConfigurationMessage>), (204, None), &[401, 409]),
    r("get", "/management/instances", false, "List the instances", Management, None, (200, Some(body::<m::instances::InstancesResponse>)), &[401]),
    r("get", "/management/instances/{instance}", false, "One instance's settings", Management, None, (200, Some(body::<m::instances::QueryInstancesResponse>)), &[401, 404]),
    r("patch", "/management/instances/{instance}", false, "Change an instance's settings", Management, Some(body::<m::instances::InstanceReconfigurationMessage>), (204, None), &[400, 401, 404]),
    r("delete", "/management/instances/{instance}", false, "Delete (or with ?purge=yes purge) an instance", Management, None, (204, None), &[401, 404]),
    r("post", "/management/instances/{instance}/auth", false, "Set an instance's credentials", Management, Some(body::<m::instances::InstanceAuthConfig>), (204, None), &[400, 401, 404]),
    // Instance settings, credentials, bank accounts.
    r("get", "/private", true, "The instance's settings", I(P::InstancesRead), None, (200, Some(body::<m::instances::QueryInstancesResponse>)), &[401, 404]),
    r("patch", "/private", true, "Change the instance's settings", I(P::InstancesWrite), Some(body::<m::instances::InstanceReconfigurationMessage>), (204, None), &[400, 401, 404]),
    r("delete", "/private", true, "Delete the instance", I(P::InstancesWrite), None, (204, None), &[401, 404]),
    r("post", "/private/auth", true, "Set the instance's credentials", I(P::InstancesWrite), Some(body::<m::instances::InstanceAuthConfig>), (204, None), &[400, 401, 404]),
    r("post", "/private/token", true, "Create a login token with a scope", I(P::InstancesWrite), Some(body::<m::instances::LoginTokenRequest>), (200, Some(body::<m::instances::LoginTokenSuccessResponse>)), &[400, 401, 403]),
    r("delete", "/private/token", true, "Revoke the presented login token", I(P::InstancesRead), None, (204, None), &[401]),
    r("get", "/private/tokens", true, "List the login tokens", I(P::InstancesRead), None, (200, Some(body::<m::instances::TokenInfos>)), &[401]),
    r("delete", "/private/tokens/{serial}", true, "Revoke a login token", I(P::InstancesWrite), None, (204, None), &[401, 404]),
    r("post", "/private/accounts", true, "Add a bank account", I(P::InstancesWrite), Some(body::<m::instances::AccountAddDetails>), (200, Some(body::<m::instances::AccountAddResponse>)), &[400, 401, 409]),
    r("get", "/private/accounts", true, "List the bank accounts", I(P::InstancesRead), None, (200, Some(body::<m::instances::AccountsSummaryResponse>)), &[401]),
    r("get", "/private/accounts/{h_wire}", true, "One bank account", I(P::InstancesRead), None, (200, Some(body::<m::instances::BankAccountDetail>)), &[401, 404]),
    r("patch", "/private/accounts/{h_wire}", true, "Change a bank account", I(P::InstancesWrite), Some(body::<m::instances::AccountPatchDetails>), (204, None), &[400, 401, 404]),
    r("delete", "/private/accounts/{h_wire}", true, "Deactivate a bank account", I(P::InstancesWrite), None, (204, None), &[401, 404]),
    // Inventory.
    r("get", "/private/products", true, "List the products", I(P::ProductsRead), None, (200, Some(body::<m::inventory::InventorySummaryResponse>)), &[401]),
    r("post", "/private/products", true, "Add a product", I(P::ProductsWrite), Some(body::<m::inventory::ProductAddDetail>), (204, None), &[400, 401, 409]),
    r("get", "/private/products/{product_id}", true, "One product", I(P::ProductsRead), None, (200, Some(body::<m::inventory::ProductDetail>)), &[401, 404]),
    r("patch", "/private/products/{product_id}", true, "Change a product", I(P::ProductsWrite), Some(body::<m::inventory::ProductPatchDetail>), (204, None), &[400, 401, 404, 409]),
    r("delete", "/private/products/{product_id}", true, "Delete a product", I(P::ProductsWrite), None, (204, None), &[401, 404, 409]),
    r("post", "/private/products/{product_id}/lock", true, "Lock (or with quantity 0 unlock) stock for a cart", I(P::ProductsLock), Some(body::<m::inventory::LockRequest>), (204, None), &[400, 401, 404, 410]),
    // Orders.
    r("get", "/private/orders", true, "List orders (filters, cursor pagination)", I(P::OrdersRead), None, (200, Some(body::<m::orders::OrderHistory>)), &[400, 401]),
    r("post", "/private/orders", true, "Create an order", I(P::OrdersWrite), Some(body::<m::orders::PostOrderRequest>), (200, Some(body::<m::orders::PostOrderResponse>)), &[400, 401, 404, 409, 410]),
    r("get", "/private/orders/{order_id}", true, "An order's status (session_id, timeout_ms long polling)", I(P::OrdersRead), None, (200, Some(body::<m::status::MerchantOrderStatusResponse>)), &[401, 404]),
    r("delete", "/private/orders/{order_id}", true, "Delete an unpaid order", I(P::OrdersWrite), None, (204, None), &[401, 404, 409]),
    r("patch", "/private/orders/{order_id}/forget", true, "Forget forgettable contract fields", I(P::OrdersWrite), Some(body::<m::orders::ForgetRequest>), (200, None), &[400, 401, 404, 409]),
    r("get", "/private/orders/events", true, "Server-Sent Events stream of order changes", I(P::OrdersRead), None, (200, None), &[401]),
    r("post", "/private/orders/{order_id}/refund", true, "Grant a (partial) refund", I(P::OrdersRefund), Some(body::<m::payments::RefundRequest>), (200, Some(body::<m::payments::MerchantRefundResponse>)), &[401, 403, 404, 409, 410]),
    // Wallet side.
    r("post", "/orders/{order_id}/claim", true, "Claim an order (nonce, claim token)", Public, Some(body::<m::ClaimRequest>), (200, Some(body::<m::ClaimResponse>)), &[404, 409]),
    r("post", "/orders/{order_id}/pay", true, "Pay an order with coins", Public, Some(body::<m::PayRequest>), (200, Some(body::<m::PayResponse>)), &[400, 402, 403, 404, 406, 409, 410, 502]),
    r("post", "/orders/{order_id}/paid", true, "Prove a payment for a session (repurchase detection)", Public, Some(body::<m::PaidRequest>), (200, None), &[400, 403, 404]),
    r("post", "/orders/{order_id}/abort", true, "Abort a payment and get the deposited coins refunded", Public, Some(body::<m::payments::AbortRequest>), (200, Some(body::<m::payments::AbortResponse>)), &[400, 403, 404, 412]),
    r("post", "/orders/{order_id}/refund", true, "Pick up granted refunds", Public, Some(body::<m::payments::WalletRefundRequest>), (200, Some(body::<m::payments::WalletRefundResponse>)), &[400, 404]),
    r("get", "/orders/{order_id}", true, "An order's status for wallets (JSON) or browsers (HTML page, 302 when paid)", Public, None, (200, Some(body::<m::status::StatusGotoResponse>)), &[403, 404]),
    // Settlement.
    r("get", "/private/transfers", true, "The transfers: the bank's confirmation, the exchange's statement, the orders they paid (filters, pagination)", I(P::TransfersRead), None, (200, Some(body::<m::settlement::TransferList>)), &[400, 401]),
    r("post", "/private/transfers", true, "Report a wire transfer that arrived (reconciled with the exchange's statement)", I(P::TransfersWrite), Some(body::<m::settlement::TransferInformation>), (204, None), &[400, 401, 404, 409]),
    r("delete", "/private/transfers/{tid}", true, "Delete a transfer no order was reconciled with", I(P::TransfersWrite), None, (204, None), &[400, 401, 404, 409]),
    r("get", "/sessions/{session_id}", true, "The order a session paid for a fulfillment URL (timeout_ms long polling)", Public, None, (200, Some(body::<m::settlement::GetSessionStatusResponse>)), &[400, 404]),
    // Webhooks.
    r("get", "/private/webhooks", true, "List the webhooks", I(P::WebhooksRead), None, (200, Some(body::<m::webhooks::WebhookSummaryResponse>)), &[401]),
    r("post", "/private/webhooks", true, "Add a signed webhook", I(P::WebhooksWrite), Some(body::<m::webhooks::WebhookAddDetails>), (200, Some(body::<m::webhooks::WebhookCreatedResponse>)), &[400, 401, 409]),
    r("get", "/private/webhooks/{webhook_id}", true, "One webhook", I(P::WebhooksRead), None, (200, Some(body::<m::webhooks::WebhookDetails>)), &[401, 404]),
    r("patch", "/private/webhooks/{webhook_id}", true, "Change a webhook", I(P::WebhooksWrite), Some(body::<m::webhooks::WebhookPatchDetails>), (204, None), &[400, 401, 404]),
    r("delete", "/private/webhooks/{webhook_id}", true, "Delete a webhook", I(P::WebhooksWrite), None, (204, None), &[401, 404]),
];

/// The path parameters of `path` (`{name}` segments).
fn parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

fn operation(route: &Route, path: &str, generator: &mut SchemaGenerator) -> Value {
    let mut op = Map::new();
    op.insert("summary".into(), route.summary.into());
    let params = parameters(path);
    if !params.is_empty() {
        op.insert("parameters".into(), params.into());
    }
    match route.access {
        Access::Public => {
            op.insert("security".into(), json!([]));
        }
        Access::Management => {
            op.insert("security".into(), json!([{"bearer": []}]));
            op.insert("x-permission".into(), "management".into());
        }
        Access::Instance(p) => {
            op.insert("security".into(), json!([{"bearer": []}]));
            op.insert("x-permission".into(), format!("{p:?}").into());
        }
    }
    if let Some(body) = route.request {
        let schema = body(generator);
        op.insert(
            "requestBody".into(),
            json!({"required": true, "content": {"application/json": {"schema": schema}}}),
        );
    }
    let mut responses = Map::new();
    let (status, body) = route.success;
    let mut ok = json!({"description": "success"});
    if let Some(body) = body {
        ok["content"] = json!({"application/json": {"schema": body(generator)}});
    }
    responses.insert(status.to_string(), ok);
    for e in route.errors {
        responses.insert(
            e.to_string(),
            json!({"description": "Taler error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorDetail"}}}}),
        );
    }
    op.insert("responses".into(), responses.into());
    Value::Object(op)
}

/// The OpenAPI 3.1 document of a backend served at `base_url` (ends in `/`).
pub fn document(base_url: &str) -> Value {
    // One generator, so that a type used by several routes is one entry of
    // `components.schemas` (OpenAPI 3.1 schemas are JSON Schema 2020-12).
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut generator = settings.into_generator();
    let mut paths = Map::new();
    for route in ROUTES {
        let mut at = vec![route.path.to_owned()];
        if route.instance_relative {
            at.push(format!("/instances/{{instance}}{}", route.path));
        }
        for path in at {
            let item = paths.entry(path.clone()).or_insert_with(|| json!({}));
            item[route.method] = operation(route, &path, &mut generator);
        }
    }
    let mut schemas = generator.take_definitions(true);
    schemas.insert(
        "ErrorDetail".into(),
        json!({
            "type": "object",
            "required": ["code"],
            "properties": {
                "code": {"type": "integer", "description": "official GNU Taler error code"},
                "hint": {"type": "string"},
                "detail": {"type": "string"},
            },
        }),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "cardcash merchant backend (GNU Taler merchant API)",
            "version": crate::http::config::VERSION,
        },
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`Authorization: Bearer secret-token:…` (the admin token, an instance's password or a login token)",
                },
            },
        },
    })
}
