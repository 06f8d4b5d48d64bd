//! cashless2ecash: card-funded Taler withdrawals (terminal, bank-integration and wire-gateway APIs).
