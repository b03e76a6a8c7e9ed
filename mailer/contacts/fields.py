"""The contact fields a CSV column can be mapped to (`--map COLUMN=FIELD`): apart
from the CSV reader, so that the command line lists them without loading it."""

FIELDS = ("email", "name", "given", "middle", "family", "org", "title", "phone", "website",
          "lang", "ignore")  # fmt: skip
