"""Django Q tasks that hand notifications to providers (built by the delivery pipeline)."""
