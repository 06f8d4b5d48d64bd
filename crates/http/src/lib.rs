//! axum plumbing shared by every cardcash service: Taler error bodies, auth, long polling, metrics, serving.
