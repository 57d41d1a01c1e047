"""Dataset generation: plan, manifest, resume, and the engines that run score tasks."""
