//! Card processor (terminal payment backend) simulator with a Wallee-style transaction API.
