//! Instances, their authentication, login tokens and bank accounts (`/management/instances`, `/private`, `/private/token`, `/private/accounts`).
