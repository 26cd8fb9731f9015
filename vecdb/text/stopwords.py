"""Built-in stop word lists: words so common that they carry no meaning for
ranking. English is Lucene's (and Elasticsearch's, tantivy's) default list;
other languages take a list from the caller."""

ENGLISH = (
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not",
    "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was",
    "will", "with",
)

BUILT_IN = {"english": ENGLISH}
