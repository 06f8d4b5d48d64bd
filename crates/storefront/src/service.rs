//! The storefront as its handlers see it: configuration, public base URL, the merchant client
//! and the cookie signer behind one cheap handle, plus the IO around the pure rules of
//! [`crate::paywall`] and [`crate::cart`] (each a short sequence of backend calls).

use std::sync::Arc;
use std::time::Duration;

use cardcash_api::merchant::status::MerchantOrderStatusResponse;
use cardcash_client::MerchantClient;
use cardcash_client::merchant::{LockOutcome, OrderOutcome};
use cardcash_util::{Amount, BaseUrl, base32};

use crate::cart::{self, Cart};
use crate::catalogue;
use crate::config::StorefrontConfig;
use crate::cookie::{self, CookieSigner, Cookies};
use crate::error::StorefrontError;
use crate::paywall::{self, Decision, Resource};

/// A handle on the running storefront; cheap to clone.
#[derive(Clone, Debug)]
pub struct Storefront(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: StorefrontConfig,
    base_url: BaseUrl,
    merchant: MerchantClient,
    signer: CookieSigner,
    csrf: String,
}

/// Where the paywall ended for one request, and the cookies to set on the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaywallOutcome {
    /// A final decision: never [`Decision::NewOrder`] nor [`Decision::AdoptPaidOrder`] (the
    /// paywall acts on those itself).
    pub decision: Decision,
    pub set_cookies: Vec<String>,
}

/// Adds the `Set-Cookie` value `cookie`, dropping an earlier one of the same name (a request
/// that replaced its order twice sets the last one only).
fn replace_cookie(set_cookies: &mut Vec<String>, cookie: String) {
    let name = |c: &str| c.split('=').next().unwrap_or("").to_owned();
    let new = name(&cookie);
    set_cookies.retain(|c| name(c) != new);
    set_cookies.push(cookie);
}

/// What adding or removing a piano did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartChange {
    /// The cart now holds this many (the cookie to set).
    Changed { quantity: u64, set_cookie: String },
    /// The cart is full.
    Full,
    /// No piano to be had.
    SoldOut,
}

/// What a checkout did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkout {
    /// The order exists: send the customer to `status_url`; the cart cookie goes.
    Created {
        order_id: String,
        status_url: String,
        clear_cookie: String,
    },
    Empty,
    /// The lock had run out and the pianos went to someone else.
    SoldOut {
        clear_cookie: String,
    },
}

impl Storefront {
    pub fn new(config: StorefrontConfig, base_url: BaseUrl, merchant: MerchantClient) -> Self {
        let signer = CookieSigner::new(&config.cookie_secret, !base_url.is_http());
        // The admin forms' anti-CSRF token: the shop's own MAC of a fixed string; a page of
        // another site cannot read it, so it cannot forge the form.
        let csrf = base32::encode(&signer.sign("admin", "csrf").into_bytes()[..]);
        let csrf = csrf.chars().take(32).collect();
        Self(Arc::new(Inner {
            config,
            base_url,
            merchant,
            signer,
            csrf,
        }))
    }

    pub fn config(&self) -> &StorefrontConfig {
        &self.0.config
    }

    /// The shop's public base URL.
    pub fn base_url(&self) -> &BaseUrl {
        &self.0.base_url
    }

    pub fn merchant(&self) -> &MerchantClient {
        &self.0.merchant
    }

    pub fn signer(&self) -> &CookieSigner {
        &self.0.signer
    }

    /// The anti-CSRF token of the admin forms.
    pub fn csrf_token(&self) -> &str {
        &self.0.csrf
    }

    /// The paywalled Sonatas.
    pub fn sonatas(&self) -> Resource {
        catalogue::sonatas(&self.0.config)
    }

    /// Design document 007 for `resource` with the request's `cookies`: steps 2–10, with
    /// step 6 (and a repurchase the backend reports) looping back.
    pub async fn paywall(
        &self,
        resource: &Resource,
        cookies: &Cookies,
    ) -> Result<PaywallOutcome, StorefrontError> {
        let signer = &self.0.signer;
        let order_cookie = cookie::order_cookie(resource.name);
        // Steps 2 and 3.
        let mut session = signer.read(cookies, cookie::SESSION).map(str::to_owned);
        let mut order = signer.read(cookies, &order_cookie).map(str::to_owned);
        let mut set_cookies = Vec::new();
        for _ in 0..paywall::MAX_ROUNDS {
            // Step 4.
            let current = paywall::current_order(session.as_deref(), order.as_deref())
                .map(|(s, o)| (s.to_owned(), o.to_owned()));
            let (session_id, order_id) = match current {
                Some(both) => both,
                None => {
                    let session_id = match &session {
                        Some(s) => s.clone(),
                        None => {
                            let s = cookie::new_session_id()?;
                            replace_cookie(
                                &mut set_cookies,
                                signer.set_cookie(cookie::SESSION, &s),
                            );
                            session = Some(s.clone());
                            s
                        }
                    };
                    let request = paywall::order_request(
                        resource,
                        &self.0.base_url,
                        &session_id,
                        self.0.config.refund_delay,
                    );
                    let order_id = match self.0.merchant.create_order(&request).await? {
                        OrderOutcome::Created(created) => created.order_id,
                        OrderOutcome::OutOfStock(_) => {
                            return Err(StorefrontError::Internal(format!(
                                "the backend finds {} out of stock",
                                resource.name
                            )));
                        }
                    };
                    tracing::info!(resource = resource.name, order_id = %order_id, "order created");
                    replace_cookie(
                        &mut set_cookies,
                        signer.set_cookie(&order_cookie, &order_id),
                    );
                    (session_id, order_id)
                }
            };
            // Step 5.
            let status = match self
                .0
                .merchant
                .order_status(&order_id, Some(&session_id), Duration::ZERO)
                .await
            {
                Ok(status) => status,
                // An order the backend does not know counts as none (step 3).
                Err(e) if e.is_not_found() => {
                    order = None;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            match paywall::decide(&status) {
                // Step 6.
                Decision::NewOrder => order = None,
                // Step 10, repurchase: this session paid that order; check it instead.
                Decision::AdoptPaidOrder { order_id } => {
                    replace_cookie(
                        &mut set_cookies,
                        signer.set_cookie(&order_cookie, &order_id),
                    );
                    order = Some(order_id);
                }
                decision => {
                    return Ok(PaywallOutcome {
                        decision,
                        set_cookies,
                    });
                }
            }
        }
        Err(StorefrontError::Internal(format!(
            "no usable order for {} after {} rounds",
            resource.name,
            paywall::MAX_ROUNDS
        )))
    }

    /// The request's cart, if its cookie is there and genuine.
    pub fn cart(&self, cookies: &Cookies) -> Option<Cart> {
        self.0
            .signer
            .read(cookies, cookie::CART)
            .and_then(Cart::from_cookie)
    }

    /// Pianos still to be had (`Some(None)`: unlimited; `None`: the backend did not say).
    pub async fn piano_available(&self) -> Option<Option<u64>> {
        match self.0.merchant.product(catalogue::PIANO).await {
            // −1: unlimited.
            Ok(Some(p)) => Some(u64::try_from(p.total_available).ok()),
            Ok(None) => Some(Some(0)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the piano's stock");
                None
            }
        }
    }

    async fn lock(&self, cart: &Cart, quantity: u64) -> Result<LockOutcome, StorefrontError> {
        Ok(self
            .0
            .merchant
            .lock_product(
                catalogue::PIANO,
                &cart.lock_uuid,
                self.0.config.lock_duration,
                quantity,
            )
            .await?)
    }

    /// Adds a piano: the cart's lock at the backend grows by one.
    pub async fn add_piano(&self, cookies: &Cookies) -> Result<CartChange, StorefrontError> {
        let cart = self
            .cart(cookies)
            .unwrap_or_else(|| Cart::new(uuid::Uuid::new_v4().to_string()));
        let Some(quantity) = cart.quantity_after_add() else {
            return Ok(CartChange::Full);
        };
        match self.lock(&cart, quantity).await? {
            LockOutcome::Locked => Ok(self.changed(cart, quantity)),
            LockOutcome::OutOfStock(_) => Ok(CartChange::SoldOut),
        }
    }

    /// Removes a piano: the cart's lock shrinks by one (0 releases it).
    pub async fn remove_piano(&self, cookies: &Cookies) -> Result<CartChange, StorefrontError> {
        let Some(cart) = self.cart(cookies) else {
            return Ok(CartChange::Changed {
                quantity: 0,
                set_cookie: self.0.signer.clear_cookie(cookie::CART),
            });
        };
        let quantity = cart.quantity_after_remove();
        match self.lock(&cart, quantity).await? {
            LockOutcome::Locked => Ok(self.changed(cart, quantity)),
            // The lock ran out meanwhile and fewer are left than the cart wants: let go.
            LockOutcome::OutOfStock(_) => {
                self.lock(&cart, 0).await?;
                Ok(self.changed(cart, 0))
            }
        }
    }

    fn changed(&self, mut cart: Cart, quantity: u64) -> CartChange {
        cart.quantity = quantity;
        CartChange::Changed {
            quantity,
            set_cookie: self.0.signer.set_cookie(cookie::CART, &cart.to_cookie()),
        }
    }

    /// Checkout: an order for the cart's pianos that takes over the cart's lock.
    pub async fn checkout(&self, cookies: &Cookies) -> Result<Checkout, StorefrontError> {
        let cart = match self.cart(cookies) {
            Some(cart) if cart.quantity > 0 => cart,
            _ => return Ok(Checkout::Empty),
        };
        let random = cardcash_crypto::random::random_bytes::<10>()?;
        let order_id = format!("piano-{}", base32::encode(&random));
        let request = cart::checkout_request(
            &cart,
            catalogue::PIANO,
            &self.0.config.piano_price,
            &self.0.base_url,
            &order_id,
            self.0.config.refund_delay,
        )
        .map_err(|e| StorefrontError::Internal(format!("cart total: {e}")))?;
        let clear_cookie = self.0.signer.clear_cookie(cookie::CART);
        let created = match self.0.merchant.create_order(&request).await? {
            OrderOutcome::Created(created) => created,
            OrderOutcome::OutOfStock(_) => return Ok(Checkout::SoldOut { clear_cookie }),
        };
        let status = self
            .0
            .merchant
            .order_status(&created.order_id, None, Duration::ZERO)
            .await?;
        tracing::info!(order_id = %created.order_id, pianos = cart.quantity, "piano order created");
        Ok(Checkout::Created {
            order_id: created.order_id,
            status_url: paywall::order_status_url(&status).to_owned(),
            clear_cookie,
        })
    }

    /// A piano order's state for its delivery page: paid, or not yet with its status URL
    /// (`None`: no such order).
    pub async fn delivery(
        &self,
        order_id: &str,
    ) -> Result<Option<(bool, String)>, StorefrontError> {
        match self
            .0
            .merchant
            .order_status(order_id, None, Duration::ZERO)
            .await
        {
            Ok(MerchantOrderStatusResponse::Paid(p)) => Ok(Some((true, p.order_status_url))),
            Ok(status) => Ok(Some((false, paywall::order_status_url(&status).to_owned()))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The admin's refund; `Ok(false)` when the backend refused it (4xx).
    pub async fn refund(
        &self,
        order_id: &str,
        amount: Amount,
        reason: &str,
    ) -> Result<bool, StorefrontError> {
        match self.0.merchant.refund(order_id, amount, reason).await {
            Ok(_) => {
                tracing::info!(order_id, "refund granted");
                Ok(true)
            }
            Err(e) if e.is_client_error() => {
                tracing::warn!(order_id, error = %e, "refund refused");
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_set_twice_is_sent_once() {
        let mut cookies = vec!["session_id=S.M; Path=/".to_owned()];
        replace_cookie(&mut cookies, "order_id_sonatas=A.M; Path=/".into());
        replace_cookie(&mut cookies, "order_id_sonatas=B.M; Path=/".into());
        assert_eq!(
            cookies,
            vec!["session_id=S.M; Path=/", "order_id_sonatas=B.M; Path=/"]
        );
    }
}
