"""spaCy pipeline components: classical/, transformer/, llm/, ensemble/."""
