"""Which reader takes a file, by its suffix: apart from the readers, so that a send
of a CSV file decides it without loading the OCR engine's module (and its process
pool), and `mailer cards` lists the image kinds without loading the CSV reader."""

VCARD_SUFFIXES = frozenset({".vcf", ".vcard"})
CSV_SUFFIXES = frozenset({".csv", ".tsv"})
TEXT_SUFFIXES = frozenset({".txt"})  # Thunderbird's tab-separated export, or a vCard
SPREADSHEET_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls", ".ods", ".numbers"})
CARD_SUFFIXES = frozenset(  # card photos and PDF scans (scans.py)
    (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".heic", ".heif", ".pdf")
)
