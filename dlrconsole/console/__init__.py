"""The support console's pages: one small module per page, logic in receipts' selectors."""
