"""virthost.storage: storage domains, pools, images and volumes."""
