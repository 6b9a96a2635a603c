"""The media database: contacts and outlets, importing and exporting them."""
