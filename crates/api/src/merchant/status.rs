//! Order status for the merchant and the wallet (`GET /private/orders/$ID`, `GET /orders/$ID`), claim and `/paid`.
