"""Getting a real board from blank to a provisioned node: flash, deploy, provision."""
