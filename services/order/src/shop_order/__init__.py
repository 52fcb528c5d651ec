"""The order service: places orders through a durable saga over user, inventory and payment."""
