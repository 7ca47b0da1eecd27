"""create_api_key's name before API keys were hashed: scripts that call it keep working, though
each run now makes a new key rather than printing the same token again."""

from dlrconsole.accounts.management.commands.create_api_key import Command as CreateApiKey


class Command(CreateApiKey):
    pass
