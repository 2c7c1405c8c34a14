"""The database: its URL, the tables, the migrations and the store."""
