"""The shop payment service: cards become payment methods, orders are charged and refunded."""
