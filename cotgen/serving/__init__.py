"""cotgen's OpenAI Images API without Ray: the server's config (`config`), errors in the OpenAI shape
(`errors`) and request checks (`request`). `cotgen.distributed.serving` puts it behind Ray Serve
deployments."""
