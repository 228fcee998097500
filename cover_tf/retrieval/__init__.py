"""Video retrieval: embed files with an export, index them with faiss, search by file.

embedding    FileEmbedder: videos (streamed, windows averaged) and images -> [D], fingerprints
index_store  EmbeddingIndex: faiss index + items + model fingerprint in a folder
__main__     `python -m cover_tf.retrieval index|search`
"""
