"""Classical components: TF-IDF + SVM text classification, rule-based and CRF NER."""
